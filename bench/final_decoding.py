"""How a streamed final is decoded, on recorded human speech: accuracy against model time.

Run: .venv/bin/python -m bench.final_decoding [--every 2]

Every clip of bench/human_speech (557 recordings, ~25 min; installed on first use; `--every N`
takes every Nth) goes through the service's own transcriber as a streamed final does (one
utterance, no model VAD), once per way of decoding. Prints WER and the model time per clip
(median, p95, total).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from adapters.faster_whisper_transcriber import FasterWhisperTranscriber, bundled_model
from application.ports import TranscriptionJob
from bench.harness import p95
from bench.human_speech import clips, wer
from domain.speech import AudioClip, TranscriptionHints

WAYS = {
    "beam 5, fallback (before)": (5, None),
    "beam 5, no fallback": (5, 0.0),
    "beam 3, no fallback": (3, 0.0),
    "greedy, no fallback": (1, 0.0),
}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--every", type=int, default=1)
    args = parser.parse_args()
    audio = clips()[:: args.every]
    models = {
        beam: FasterWhisperTranscriber(str(bundled_model()), threads=2, stream_beam_size=beam)
        for beam in {beam for beam, _ in WAYS.values()}
    }
    texts: dict[str, list[str]] = {way: [] for way in WAYS}
    times: dict[str, list[float]] = {way: [] for way in WAYS}
    for clip in audio:  # ways interleaved clip by clip: the machine's noise hits all alike
        for way, (beam, temperature) in WAYS.items():
            hints = TranscriptionHints(temperature=temperature)
            started = time.perf_counter()
            job = TranscriptionJob(AudioClip(clip.pcm, 16_000), "en", kind="utterance", hints=hints)
            heard = await models[beam].transcribe(job)
            times[way].append(1000 * (time.perf_counter() - started))
            texts[way].append(heard.text)
    minutes = sum(c.seconds for c in audio) / 60
    print(f"{len(audio)} clips, {minutes:.1f} min of recorded human speech\n")
    print("| decoding | WER | model time per clip: median / p95 / total |")
    print("| --- | --- | --- |")
    references = [c.text for c in audio]
    for way in WAYS:
        spent = times[way]
        print(
            f"| {way} | {wer(references, texts[way]):.4f} | {statistics.median(spent):.0f} / "
            f"{p95(spent):.0f} ms / {sum(spent) / 1000:.0f} s |"
        )


if __name__ == "__main__":
    asyncio.run(main())
