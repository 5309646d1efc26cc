"""A streamed final's encoder window and timestamp tokens, on recorded human speech.

Run: flock /tmp/bench.lock .venv/bin/python -m bench.final_window [--every 2]

Every clip of bench/human_speech (`--every N` takes every Nth) is decoded as a streamed final
(one utterance, no model VAD) in each way, twice: cut tight, and followed by 1 s of
silence (a client's commit or Deepgram's Finalize after a pause). Whisper, given a shortened
window and no timestamp tokens, drops the tail of some sentences and invents closing words
("Thank you.") in trailing silence; the silent tail shows the second. Prints WER, the clips
whose text gained words after the silence, and the model time per clip.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from adapters.faster_whisper_transcriber import FULL_WINDOW, WindowedWhisper, bundled_model
from bench.harness import p95
from bench.human_speech import clips, normalize, wer

WAYS = {  # name: (encoder window in 10 ms frames, timestamp tokens, beam width, the window's
    # rest filled with silence's log-mel (the service) or faster-whisper's zeros)
    "30 s, timestamps (Whisper's)": (FULL_WINDOW, True, 5, True),
    "30 s, timestamps, zeros": (FULL_WINDOW, True, 5, False),
    "20 s, text only": (2000, False, 5, True),
    "20 s, timestamps": (2000, True, 5, True),
    "20 s, timestamps, zeros": (2000, True, 5, False),
    "15 s, timestamps": (1500, True, 5, True),
    "20 s, timestamps, beam 3": (2000, True, 3, True),
    "15 s, timestamps, beam 3": (1500, True, 3, True),
    "10 s, timestamps": (1000, True, 5, True),
}
SILENCE = np.zeros(16_000, dtype=np.float32)


def decode(
    model: WindowedWhisper, audio: np.ndarray, window: int, timestamps: bool, beam: int, fill: bool
) -> str:
    model.window, model.fill_with_silence = window, fill
    segments, _ = model.transcribe(
        audio,
        language="en",
        beam_size=beam,
        vad_filter=False,
        without_timestamps=not timestamps,
        condition_on_previous_text=True,
    )
    return " ".join(s.text.strip() for s in segments)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--start", type=int, default=0, help="first clip taken")
    parser.add_argument("--ways", default=";".join(WAYS), help="names, separated by semicolons")
    args = parser.parse_args()
    audio = clips()[args.start :: args.every]
    ways = {name: WAYS[name] for name in args.ways.split(";")}
    model = WindowedWhisper(str(bundled_model()), compute_type="int8", cpu_threads=2)
    tight: dict[str, list[str]] = {way: [] for way in ways}
    padded: dict[str, list[str]] = {way: [] for way in ways}
    times: dict[str, list[float]] = {way: [] for way in ways}
    for clip in audio:  # ways interleaved clip by clip: the machine's noise hits all alike
        samples = np.frombuffer(clip.pcm, dtype=np.int16).astype(np.float32) / 32768.0
        for way, (window, timestamps, beam, fill) in ways.items():
            started = time.perf_counter()
            tight[way].append(decode(model, samples, window, timestamps, beam, fill))
            times[way].append(1000 * (time.perf_counter() - started))
            with_silence = np.concatenate([samples, SILENCE])
            padded[way].append(decode(model, with_silence, window, timestamps, beam, fill))
    minutes = sum(c.seconds for c in audio) / 60
    print(f"{len(audio)} clips, {minutes:.1f} min of recorded human speech\n")
    print(
        "| final decoding | WER, tight | WER, + 1 s silence | clips gaining words in silence "
        "| model time per clip (tight): median / p95 |"
    )
    print("| --- | --- | --- | --- | --- |")
    references = [c.text for c in audio]
    for way in ways:
        gained = sum(
            len(normalize(p).split()) > len(normalize(t).split())
            for t, p in zip(tight[way], padded[way], strict=True)
        )
        spent = times[way]
        print(
            f"| {way} | {wer(references, tight[way]):.4f} | {wer(references, padded[way]):.4f} "
            f"| {gained} | {statistics.median(spent):.0f} / {p95(spent):.0f} ms |"
        )


if __name__ == "__main__":
    main()
