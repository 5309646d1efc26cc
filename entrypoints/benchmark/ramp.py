"""Concurrent real-time streams held: more streams each step, while their finals keep up."""

from __future__ import annotations

import asyncio
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from entrypoints.benchmark.streams import StreamLags, hold_streams

STEPS = (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)
P95_LIMIT_MS = 1500.0  # a final later than this feels like a stalled conversation
GROWTH_LIMIT_MS = 300.0  # last finals minus first finals: more means a queue is building


@dataclass
class Step:
    """One step of the ramp: `streams` at once, and whether the machine kept up."""

    streams: int
    finals: int
    median_ms: float
    p95_ms: float
    growth_ms: float
    missed: int
    errors: list[str] = field(default_factory=list)
    runs: list[StreamLags] = field(default_factory=list, repr=False)

    @property
    def held(self) -> bool:
        return (
            self.finals > 0
            and self.p95_ms <= P95_LIMIT_MS
            and self.growth_ms <= GROWTH_LIMIT_MS
            and not self.missed
            and not self.errors
        )


def judge(streams: int, runs: list[StreamLags]) -> Step:
    """Pool the streams' lags; growth is the mean of their last lags minus that of their first."""
    lags = [lag for run in runs for lag in run.lags_ms]
    ends = [run.lags_ms for run in runs if len(run.lags_ms) >= 2]
    growth = (
        statistics.mean(r[-1] for r in ends) - statistics.mean(r[0] for r in ends) if ends else 0.0
    )
    return Step(
        streams=streams,
        finals=len(lags),
        median_ms=statistics.median(lags) if lags else math.inf,
        p95_ms=percentile(lags, 95),
        growth_ms=growth,
        missed=sum(run.missed for run in runs),
        errors=sorted({e for run in runs for e in run.errors}),
        runs=runs,
    )


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; infinite for no values (nothing came back)."""
    if not values:
        return math.inf
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


async def ramp(
    url: str,
    headers: dict[str, str],
    speech: list[bytes],
    seconds: float,
    max_streams: int,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Step]:
    """Steps of 1, 2, 4, 6, 8, 12, … streams up to `max_streams`, until one does not hold.

    A step that does not hold is run once more before the ramp stops: on a shared machine one
    late final can come from someone else's work.
    """
    steps: list[Step] = []
    for streams in [n for n in STEPS if n <= max_streams] or [max_streams]:
        for attempt in ("", " (again)"):
            progress(f"{streams} real-time stream(s) for {seconds:g} s{attempt}")
            runs = await hold_streams(url, streams, seconds, headers=headers, speech=speech)
            steps.append(judge(streams, runs))
            await asyncio.sleep(1.0)  # let the last finals' work drain before the next run
            if steps[-1].held:
                break
        if not steps[-1].held:
            break
    return steps


def streams_held(steps: list[Step]) -> int:
    return max((s.streams for s in steps if s.held), default=0)
