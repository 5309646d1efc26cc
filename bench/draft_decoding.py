"""Partials (drafts) on recorded human speech: the 10 s draft window against the full 30 s.

Run: .venv/bin/python -m bench.draft_decoding [--every 2]

Every clip of bench/human_speech (installed on first use; `--every N` takes every Nth) is
drafted by the service's transcriber (greedy, no fallback, tokens capped) with the 10 s draft
window (STT_DRAFT_WINDOW_S, the default) and with Whisper's full 30 s. Prints WER and model
time per clip.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from adapters import faster_whisper_transcriber as whisper
from application.ports import TranscriptionJob
from bench.harness import p95
from bench.human_speech import clips, wer
from domain.speech import AudioClip


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--every", type=int, default=1)
    args = parser.parse_args()
    audio = clips()[:: args.every]
    path = str(whisper.bundled_model())
    zeros = whisper.FasterWhisperTranscriber(path, threads=2)
    zeros._model.fill_with_silence = False  # faster-whisper's own padding
    ways = {
        "10 s window (now)": whisper.FasterWhisperTranscriber(path, threads=2),
        "10 s window, zero padding": zeros,
        "30 s window": whisper.FasterWhisperTranscriber(path, threads=2, draft_window_s=30),
    }
    texts: dict[str, list[str]] = {way: [] for way in ways}
    times: dict[str, list[float]] = {way: [] for way in ways}
    for clip in audio:
        for way, model in ways.items():
            started = time.perf_counter()
            job = TranscriptionJob(AudioClip(clip.pcm, 16_000), "en", kind="draft")
            heard = await model.transcribe(job)
            times[way].append(1000 * (time.perf_counter() - started))
            texts[way].append(heard.text)
    minutes = sum(c.seconds for c in audio) / 60
    print(f"{len(audio)} clips, {minutes:.1f} min of recorded human speech\n")
    print("| draft | WER | model time per clip: median / p95 / max |")
    print("| --- | --- | --- |")
    for way in ways:
        spent = times[way]
        score = wer([c.text for c in audio], texts[way])
        print(
            f"| {way} | {score:.4f} | {statistics.median(spent):.0f} / {p95(spent):.0f} / "
            f"{max(spent):.0f} ms |"
        )


if __name__ == "__main__":
    asyncio.run(main())
