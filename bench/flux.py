"""Issue 26: Deepgram Flux (/v2/listen) turn ends on recorded human speech, through the service.

Run: .venv/bin/python -m bench.flux [--clips 30] [--eager 0.5] [--eot 0.7] [--timeout-ms 1000]

A `voicepipe serve` starts on loopback (defaults: semantic turns with the turn model); one
WebSocket client streams recorded human clips (bench/human_speech, every k-th of the 1.5-12 s
ones, as bench.turn_end chooses them) to /v2/listen in real time, 20 ms frames, each clip
followed by 1.5 s of silence. End of speech is the wall time the clip's last loud 20 ms frame
was sent (energy above 15% of the clip's 95th-percentile frame); for each clip's last turn:
- EndOfTurn after the end of speech (median, p95), and how the turns ended (trigger);
- EagerEndOfTurn after the end of speech, for the eager end that the EndOfTurn confirmed;
- of every EagerEndOfTurn, the fraction followed by TurnResumed (a speculative answer dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import audioop
import json
import statistics
import time
from collections import Counter
from typing import Any

import websockets

from bench.harness import p95, running_service
from bench.human_speech import Clip
from bench.turn_end import FRAME, GAP, chosen


def speech_end(pcm: bytes) -> int:
    """Bytes up to the end of the clip's last loud frame."""
    levels = [audioop.rms(pcm[at : at + FRAME], 2) for at in range(0, len(pcm), FRAME)]
    loud = 0.15 * sorted(levels)[int(0.95 * (len(levels) - 1))]
    last = max((i for i, level in enumerate(levels) if level > loud), default=len(levels) - 1)
    return (last + 1) * FRAME


async def stream(url: str, audio: list[Clip]) -> tuple[list[float], list[dict[str, Any]]]:
    """The wall time each clip's speech ended, and every message with its arrival time."""
    ends: list[float] = []
    seen: list[dict[str, Any]] = []
    async with websockets.connect(url, max_size=None) as ws:

        async def receive() -> None:
            async for message in ws:
                seen.append(json.loads(message) | {"at": time.perf_counter()})

        receiver = asyncio.create_task(receive())
        clock = time.perf_counter()
        for clip in audio:
            spoken = speech_end(clip.pcm)
            for pcm in (clip.pcm, GAP):
                for at in range(0, len(pcm), FRAME):
                    await ws.send(pcm[at : at + FRAME])
                    clock += 0.02
                    if pcm is clip.pcm and at + FRAME >= spoken > at:
                        ends.append(time.perf_counter())
                    await asyncio.sleep(max(0.0, clock - time.perf_counter()))
        await ws.send(json.dumps({"type": "CloseStream"}))
        await asyncio.wait_for(receiver, 60)
    return ends, seen


def measure(ends: list[float], seen: list[dict[str, Any]]) -> dict[str, Any]:
    turns = [m for m in seen if m.get("type") == "TurnInfo"]
    eot_lags, eager_lags, triggers = [], [], Counter[str]()
    for i, ended in enumerate(ends):
        until = ends[i + 1] if i + 1 < len(ends) else float("inf")
        last = [m for m in turns if m["event"] == "EndOfTurn" and ended <= m["at"] < until]
        if not last:
            continue
        end = last[-1]
        eot_lags.append(1000 * (end["at"] - ended))
        triggers[end.get("trigger", "?")] += 1
        eager = [
            m
            for m in turns
            if m["event"] == "EagerEndOfTurn" and m["turn_index"] == end["turn_index"]
        ]
        if eager and eager[-1]["at"] >= ended:
            eager_lags.append(1000 * (eager[-1]["at"] - ended))
    eagers = sum(m["event"] == "EagerEndOfTurn" for m in turns)
    resumed = sum(m["event"] == "TurnResumed" for m in turns)
    return {
        "clips": len(ends),
        "turns": sum(m["event"] == "EndOfTurn" for m in turns),
        "eot": eot_lags,
        "eager": eager_lags,
        "triggers": dict(triggers),
        "eagers": eagers,
        "resumed": resumed,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=30)
    parser.add_argument("--eager", type=float, default=0.5, help="eager_eot_threshold")
    parser.add_argument("--eot", type=float, default=0.7, help="eot_threshold")
    parser.add_argument("--timeout-ms", type=int, default=1000, help="eot_timeout_ms")
    args = parser.parse_args()
    audio = chosen(args.clips)
    query = (
        f"model=flux-general-en&encoding=linear16&sample_rate=16000&eot_threshold={args.eot}"
        f"&eager_eot_threshold={args.eager}&eot_timeout_ms={args.timeout_ms}"
    )
    with running_service() as service:
        url = service.url.replace("http", "ws") + "/v2/listen?" + query
        got = measure(*asyncio.run(stream(url, audio)))
    seconds = sum(c.seconds for c in audio)
    print(f"{got['clips']} recorded clips, {seconds:.0f} s of speech; {query}")
    print("| figure | median | p95 | count |")
    print("| --- | --- | --- | --- |")
    for name, lags in (
        ("EndOfTurn after end of speech", got["eot"]),
        ("EagerEndOfTurn after end of speech", got["eager"]),
    ):
        if lags:
            print(
                f"| {name} | {statistics.median(lags):.0f} ms | {p95(lags):.0f} ms | {len(lags)} |"
            )
    share = got["resumed"] / got["eagers"] if got["eagers"] else 0.0
    print(
        f"| eager ends followed by TurnResumed | {share:.1%} | "
        f"| {got['resumed']} of {got['eagers']} |"
    )
    print(f"turns: {got['turns']}; EndOfTurn triggers (last turn of each clip): {got['triggers']}")


if __name__ == "__main__":
    main()
