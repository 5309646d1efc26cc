"""The bench's results as a table for people (figure, value, what it means for sizing) and as
JSON for scripts."""

from __future__ import annotations

import math
import statistics
from typing import Any

from entrypoints.benchmark.figures import Ratio
from entrypoints.benchmark.load import LoadResult
from entrypoints.benchmark.ramp import GROWTH_LIMIT_MS, P95_LIMIT_MS, Step, percentile, streams_held

Row = tuple[str, str, str]


def results(
    tts: Ratio, stt: Ratio, chunks: list[float], steps: list[Step], load: LoadResult,
    max_streams: int, stream_seconds: float,
) -> dict[str, Any]:  # fmt: skip
    """Every figure, in plain numbers (None where nothing could be measured)."""
    # One stream alone: its best run, as the ramp judged it (a second run only if the first failed)
    ones = [step for step in steps if step.streams == 1 and step.runs]
    single = min(ones, key=lambda step: step.p95_ms).runs[0] if ones else None
    lags = single.lags_ms if single else []
    server = single.end_of_speech_ms if single else []
    held = streams_held(steps)
    figures: dict[str, Any] = _finite(
        {
            "tts_real_time_factor": vars(tts),
            "stt_real_time_factor": vars(stt),
            "first_audio_chunk_ms": {
                "median": statistics.median(chunks) if chunks else None,
                "max": max(chunks, default=None),
                "runs": len(chunks),
            },
            "end_of_speech_to_final_ms": {
                "median": statistics.median(lags) if lags else None,
                "p95": percentile(lags, 95),
                "server_median": statistics.median(server) if server else None,
                "finals": len(lags),
            },
            "cached_tts": {
                "requests_per_second": load.requests_per_second,
                "p50_ms": percentile(load.latencies_ms, 50),
                "p99_ms": percentile(load.latencies_ms, 99),
                "connections": load.connections,
                "seconds": load.seconds,
                "response_bytes": load.response_bytes,
                "failures": {str(status): n for status, n in load.failures.items()},
            },
            "streams_held": {
                "streams": held,
                "at_cap": bool(steps) and steps[-1].held,  # the last step held: the cap was hit
                "max_streams": max_streams,
                "seconds_per_step": stream_seconds,
                "p95_limit_ms": P95_LIMIT_MS,
                "growth_limit_ms": GROWTH_LIMIT_MS,
                "steps": [
                    {key: value for key, value in vars(step).items() if key != "runs"}
                    | {"held": step.held}
                    for step in steps
                ],
            },
        }
    )
    return figures


def rows(figures: dict[str, Any]) -> list[Row]:
    tts, stt = figures["tts_real_time_factor"], figures["stt_real_time_factor"]
    chunk, turn = figures["first_audio_chunk_ms"], figures["end_of_speech_to_final_ms"]
    cached, held = figures["cached_tts"], figures["streams_held"]
    failed = sum(cached["failures"].values())
    server = f", server {_ms(turn['server_median'])}" if turn["server_median"] is not None else ""
    streams = f">= {held['streams']}" if held["at_cap"] else str(held["streams"])
    last = held["steps"][-1] if held["steps"] else None
    failed_step = last if last and not last["held"] else None
    if failed_step:  # what the next step up did: how far past the limit this machine is
        streams += f" ({failed_step['streams']}: {_why(failed_step)})"
    return [
        ("TTS real-time factor", f"{tts['median']:.3f}",
         f"uncached speech is made {1 / tts['median']:.0f}x faster than it plays"),
        ("STT real-time factor", f"{stt['median']:.3f}",
         f"an upload is transcribed {1 / stt['median']:.0f}x faster than it plays: "
         f"1 h of recordings in ~{60 * stt['median']:.0f} min"),
        ("first audio chunk", f"{_ms(chunk['median'])} (max {_ms(chunk['max'])})",
         "wait before a streamed, uncached reply starts to play"),
        ("end of speech -> final", f"{_ms(turn['median'])} (p95 {_ms(turn['p95'])}{server})",
         "turn-taking delay of one live microphone"),
        ("cached TTS", f"{cached['requests_per_second']:.0f} req/s, p99 {_ms(cached['p99_ms'])}"
         + (f", {failed} failed" if failed else ""),
         f"a repeated prompt from the cache, {cached['connections']} clients at once"),
        ("real-time streams held", streams,
         f"live microphones per instance with finals p95 <= {held['p95_limit_ms'] / 1000:g} s "
         "and no lag growth"),
    ]  # fmt: skip


def table(rows: list[Row]) -> str:
    header = ("figure", "value", "what it means for sizing")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    lines = [
        " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]
    ]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(f"| {line} |" for line in lines)


def _why(step: dict[str, Any]) -> str:
    if step["errors"] or step["missed"]:
        return f"{step['missed']} finals missing, errors {step['errors']}"
    if step["p95_ms"] is not None and step["p95_ms"] > P95_LIMIT_MS:
        return f"p95 {_ms(step['p95_ms'])}"
    return f"lag grew {_ms(step['growth_ms'])}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _finite(value: Any) -> Any:
    """JSON has no infinity: a figure nothing could be measured for is None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
