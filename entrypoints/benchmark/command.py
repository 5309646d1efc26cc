"""`voicepipe bench`: measure a service (one it starts, or --url) and print the sizing table."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import dataclass, replace
from typing import Any

import httpx
from websockets.exceptions import WebSocketException

from entrypoints.benchmark import figures, report
from entrypoints.benchmark.ramp import ramp
from entrypoints.benchmark.service import Target, auth_headers, own_service
from entrypoints.benchmark.speech import spoken_utterances
from entrypoints.benchmark.streams import hold_streams


@dataclass(frozen=True)
class Plan:
    """How much of each figure to measure."""

    tts_runs: int
    stt_runs: int
    chunk_runs: int
    load_connections: int
    load_seconds: float
    stream_seconds: float
    max_streams: int


FULL = Plan(8, 6, 8, load_connections=50, load_seconds=8.0, stream_seconds=25.0, max_streams=64)
QUICK = Plan(3, 3, 3, load_connections=16, load_seconds=3.0, stream_seconds=10.0, max_streams=8)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="measure a running service instead of starting one")
    parser.add_argument("--api-key", help="its API key (default: $VOICEPIPE_API_KEY)")
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute)")
    parser.add_argument("--json", action="store_true", help="JSON on stdout, the table on stderr")
    parser.add_argument("--stream-seconds", type=float, help="length of each ramp step")
    parser.add_argument(
        "--max-streams", type=_at_least_one, help="the most real-time streams to try"
    )
    parser.add_argument("--load-seconds", type=float, help="length of the cached TTS load")
    parser.add_argument("--load-connections", type=int, help="clients of the cached TTS load")


def run(args: argparse.Namespace) -> int:
    plan = replace(
        QUICK if args.quick else FULL,
        **{
            name: value
            for name in ("stream_seconds", "max_streams", "load_seconds", "load_connections")
            if (value := getattr(args, name)) is not None
        },
    )
    try:
        if args.url:
            key = args.api_key or os.environ.get("VOICEPIPE_API_KEY", "").strip() or None
            target = Target(args.url.rstrip("/"), auth_headers(key))
            measured = asyncio.run(measure(target, plan))
        else:
            _progress("starting `voicepipe serve` on a free loopback port")
            with own_service() as target:
                measured = asyncio.run(measure(target, plan))
    except (RuntimeError, OSError, httpx.HTTPError, WebSocketException) as error:
        print(f"voicepipe: bench: {error}", file=sys.stderr)
        return 1
    output = {
        "service": {"url": target.url, "started_by_bench": target.own, "cpus": os.cpu_count()},
        "quick": bool(args.quick),
        **measured,
    }
    rows = report.rows(output)
    title = f"voicepipe bench: {target.url}" + (
        f" (started by the bench, {os.cpu_count()} CPUs)" if target.own else ""
    )
    printed = f"{title}\n{report.table(rows)}"
    if args.json:
        print(printed, file=sys.stderr)
        output["rows"] = [dict(zip(("figure", "value", "meaning"), r, strict=True)) for r in rows]
        print(json.dumps(output, indent=2))
    else:
        print(printed)
    return 0


async def measure(target: Target, plan: Plan) -> dict[str, Any]:
    """Every figure, one at a time; the cached load last, as it fills the event log."""
    headers = target.headers
    async with httpx.AsyncClient(base_url=target.url, headers=headers, timeout=300) as http:
        _progress("speech for the STT figures, spoken by the service")
        speech = await spoken_utterances(target.url, headers)
        _progress(f"TTS real-time factor ({plan.tts_runs} requests)")
        tts = await figures.tts_real_time_factor(http, plan.tts_runs)
        _progress(f"STT real-time factor ({plan.stt_runs} requests)")
        stt = await figures.stt_real_time_factor(http, speech, plan.stt_runs)
        _progress(f"first audio chunk of streamed TTS ({plan.chunk_runs} requests)")
        chunks = await figures.first_chunk_ms(http, plan.chunk_runs)
        _progress("warming up a real-time stream")
        await hold_streams(target.url, 1, 0.0, headers=headers, speech=speech[:1])
        steps = await ramp(
            target.url, headers, speech, plan.stream_seconds, plan.max_streams, _progress
        )
        connections, seconds = plan.load_connections, plan.load_seconds
        _progress(f"cached TTS load ({connections} keep-alive clients, {seconds:g} s)")
        load = await figures.cached_load(http, target, connections, seconds)
    return report.results(tts, stt, chunks, steps, load, plan.max_streams, plan.stream_seconds)


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("must be a whole number, 1 or more")
    return int(text)


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)
