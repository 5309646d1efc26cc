"""Issue 17: may a streamed final start sooner in the pause, kept when the pause stays quiet?

Run (after a turn_end run that dumps what the service heard):
    flock /tmp/bench.lock .venv/bin/python -m bench.early_cut /tmp/te/after.json \\
        --clips 251 --streams 4

The service's final starts after 192 ms of silence (VAD probability < 0.35). This decodes
each of the service's cuts whole and again ending 64 / 96 / 128 ms sooner, and scores the
sooner cut where the audio it leaves out was quiet (every VAD window's probability below a
gate), the whole cut elsewhere: WER, and how many cuts each gate keeps.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from adapters.faster_whisper_transcriber import WindowedWhisper, bundled_model
from adapters.silero_vad import WINDOW, SileroVoiceActivityDetector
from bench.human_speech import wer
from bench.turn_end import GAP, chosen

SOONER_MS = (64, 96, 128)
GATES = (0.02, 0.05, 0.1, 0.15, 0.2, 1.0)  # 1.0: keep every sooner cut


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dump", type=Path)
    parser.add_argument("--clips", type=int, default=251)
    parser.add_argument("--streams", type=int, default=4)
    args = parser.parse_args()
    heard = json.loads(args.dump.read_text())
    audio = chosen(args.clips)
    parts = [audio[i :: args.streams] for i in range(args.streams)]
    model = WindowedWhisper(str(bundled_model()), compute_type="int8", cpu_threads=2)
    model.window = 1500
    vad = SileroVoiceActivityDetector()

    def said(cut: np.ndarray) -> str:
        segments, _ = model.transcribe(
            cut, language="en", beam_size=5, vad_filter=False, condition_on_previous_text=True
        )
        return " ".join(s.text.strip() for s in segments)

    whole: list[list[str]] = []
    sooner: dict[int, list[list[str]]] = {ms: [] for ms in SOONER_MS}
    tails: dict[int, list[list[float]]] = {ms: [] for ms in SOONER_MS}  # per stream, per cut
    for part, finals in zip(parts, heard["finals"], strict=True):
        pcm = b"".join(clip.pcm + GAP for clip in part)
        samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
        probabilities = vad.session().probabilities(pcm)  # as the stream saw them
        whole.append([])
        for ms in SOONER_MS:
            sooner[ms].append([])
            tails[ms].append([])
        for final in finals:
            start, end = round(final["start"] * 16_000), round(final["end"] * 16_000)
            whole[-1].append(said(samples[start:end]))
            for ms in SOONER_MS:
                left_out = ms * 16
                sooner[ms][-1].append(said(samples[start : end - left_out]))
                windows = probabilities[(end - left_out) // WINDOW : end // WINDOW]
                tails[ms][-1].append(max(windows, default=0.0))
    references = heard["references"]
    cuts = sum(len(f) for f in heard["finals"])
    whole_wer = wer(references, [" ".join(w) for w in whole])
    print(f"{cuts} utterances cut by the service; whole cuts: WER {whole_wer:.4f}\n")
    print("| final starts after | tail gate (max VAD probability) | sooner cuts kept | WER |")
    print("| --- | --- | --- | --- |")
    for ms in SOONER_MS:
        for gate in GATES:
            texts, kept = [], 0
            for full, soon, tail in zip(whole, sooner[ms], tails[ms], strict=True):
                picked = [s if t < gate else f for f, s, t in zip(full, soon, tail, strict=True)]
                kept += sum(t < gate for t in tail)
                texts.append(" ".join(picked))
            print(f"| {192 - ms} ms | {gate} | {kept} / {cuts} | {wer(references, texts):.4f} |")


if __name__ == "__main__":
    main()
