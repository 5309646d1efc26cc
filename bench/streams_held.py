"""Issue 17: concurrent real-time streams one machine holds, before and after.

Run: .venv/bin/python -m bench.streams_held [--seconds 30] [--configs before,after,multilingual]

For each configuration a `voicepipe serve` starts on loopback and `voicepipe bench`'s ramp
(entrypoints.benchmark.ramp) runs 1, 2, 4, 6, 8, 12, ... streams at once over /ws/voice, each
sending recorded human speech (bench/human_speech, 2-6 s sentences) in real time, 20 ms
frames, 1 s of silence after each. A step holds while the p95 of its finals (last speech frame
-> final, at the client) is at most 1.5 s, the lag does not grow and no final is missed.
"""

from __future__ import annotations

import argparse
import asyncio

from bench.harness import running_service
from bench.human_speech import clips
from bench.turn_end import CONFIGS as TURN_CONFIGS
from entrypoints.benchmark.ramp import Step, ramp, streams_held

# `multilingual`: the default model is Whisper base, as a stream in another language gets it.
CONFIGS = TURN_CONFIGS | {"multilingual": {"WHISPER_MODEL": "base"}}


def speech(count: int = 12) -> list[bytes]:
    sentences = [c for c in clips(shortest=2.0, longest=6.0) if c.text.rstrip().endswith(".")]
    step = max(1, len(sentences) // count)
    return [c.pcm for c in sentences[::step][:count]]


def measure(name: str, seconds: float, most: int) -> list[Step]:
    with running_service(**CONFIGS[name]) as service:
        return asyncio.run(
            ramp(service.url, {}, speech(), seconds, most, progress=lambda line: print(line))
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--configs", default="before,after")
    parser.add_argument("--max-streams", type=int, default=64)
    args = parser.parse_args()
    for name in args.configs.split(","):
        steps = measure(name, args.seconds, args.max_streams)
        print(f"\n{name}: {streams_held(steps)} streams held")
        print("| streams | finals | median | p95 | growth | missed | held |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for s in steps:
            print(
                f"| {s.streams} | {s.finals} | {s.median_ms:.0f} ms | {s.p95_ms:.0f} ms | "
                f"{s.growth_ms:+.0f} ms | {s.missed} | {'yes' if s.held else 'no'} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
