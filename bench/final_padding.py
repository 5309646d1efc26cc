"""Issue 17: a streamed final's encoder window and the silence around it, on the very
utterances the service cut from recorded human speech.

Run (after a turn_end run that dumps what the service heard):
    flock /tmp/bench.lock .venv/bin/python -m bench.turn_end --clips 251 --streams 4 \\
        --configs after --dump /tmp/te
    flock /tmp/bench.lock .venv/bin/python -m bench.final_padding /tmp/te/after.json \\
        --clips 251 --streams 4

Rebuilds each stream's audio (clips with 1.5 s gaps, as bench.turn_end sent them), cuts every
final's utterance where the service cut it, and decodes it each way (beam 5, timestamps).
Prints WER against the references and the model time per utterance.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from adapters.faster_whisper_transcriber import FULL_WINDOW, WindowedWhisper, bundled_model
from bench.human_speech import wer
from bench.turn_end import GAP, chosen

WAYS = {  # name: (encoder window in 10 ms frames, seconds of silence before, after (less
    # than 0: that much cut off the end),
    # the window's rest filled with silence's log-mel, not faster-whisper's zeros)
    "30 s, zeros (faster-whisper's)": (FULL_WINDOW, 0.0, 0.0, False),
    "30 s, silence-filled": (FULL_WINDOW, 0.0, 0.0, True),
    "20 s, zeros": (2000, 0.0, 0.0, False),
    "20 s, zeros, 0.5 s of silence before and after": (2000, 0.5, 0.5, False),
    "20 s, silence-filled": (2000, 0.0, 0.0, True),
    "20 s, silence-filled, 0.5 s of silence before and after": (2000, 0.5, 0.5, True),
    "15 s, silence-filled": (1500, 0.0, 0.0, True),
    # STT_EARLY_MS=96 instead of 192: the speculative final's cut ends 96 ms sooner
    "20 s, silence-filled, cut 96 ms sooner": (2000, 0.0, -0.096, True),
    "15 s, silence-filled, cut 96 ms sooner": (1500, 0.0, -0.096, True),
}


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * 16_000), dtype=np.float32)


def around(cut: np.ndarray, after: float) -> np.ndarray:
    """The cut with `after` seconds of silence after it, or that much less of it."""
    if after < 0:
        return cut[: len(cut) - round(-after * 16_000)]
    return np.concatenate([cut, silence(after)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dump", type=Path)
    parser.add_argument("--clips", type=int, default=251)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--ways", default=";".join(WAYS), help="names, separated by semicolons")
    args = parser.parse_args()
    ways = {name: WAYS[name] for name in args.ways.split(";")}
    heard = json.loads(args.dump.read_text())
    audio = chosen(args.clips)
    parts = [audio[i :: args.streams] for i in range(args.streams)]
    model = WindowedWhisper(str(bundled_model()), compute_type="int8", cpu_threads=2)
    texts: dict[str, list[str]] = {way: [] for way in ways}
    times: dict[str, list[float]] = {way: [] for way in ways}
    for part, finals in zip(parts, heard["finals"], strict=True):
        pcm = b"".join(clip.pcm + GAP for clip in part)
        samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
        said: dict[str, list[str]] = {way: [] for way in ways}
        for final in finals:
            cut = samples[round(final["start"] * 16_000) : round(final["end"] * 16_000)]
            for way, (window, before, after, fill) in ways.items():
                model.window, model.fill_with_silence = window, fill
                started = time.perf_counter()
                segments, _ = model.transcribe(
                    np.concatenate([silence(before), around(cut, after)]),
                    language="en",
                    beam_size=5,
                    vad_filter=False,
                    condition_on_previous_text=True,
                )
                said[way].append(" ".join(s.text.strip() for s in segments))
                times[way].append(1000 * (time.perf_counter() - started))
        for way in ways:
            texts[way].append(" ".join(said[way]))
    print(f"{sum(len(f) for f in heard['finals'])} utterances cut by the service\n")
    print("| final decoding | WER | model time per utterance, median |")
    print("| --- | --- | --- |")
    for way in ways:
        print(
            f"| {way} | {wer(heard['references'], texts[way]):.4f} | "
            f"{statistics.median(times[way]):.0f} ms |"
        )


if __name__ == "__main__":
    main()
