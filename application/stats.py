"""The stats projection: a pure fold over domain events.

Nothing else counts anything: replaying the same events gives the same stats.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter, defaultdict, deque
from typing import Any

from application.background import stop_if_cancelled
from application.ports import EventLog
from domain.events import (
    STEP_OF,
    AnswerSpeculated,
    CacheLookedUp,
    CircuitClosed,
    CircuitHalfOpened,
    CircuitOpened,
    DomainEvent,
    ProviderFailed,
    ProviderFellBack,
    ReplyInterrupted,
    RequestCompleted,
    RequestFailed,
    RequestReceived,
    SpeechSynthesized,
    SpeechTranscribed,
    StepDegraded,
    VoiceReplied,
)

log = logging.getLogger(__name__)

# Percentiles over the most recent samples keep memory bounded on a long-lived log.
SAMPLE_WINDOW = 10_000


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, math.ceil(q / 100.0 * len(sorted_values)) - 1))
    return sorted_values[rank]


def summarize(samples: deque[float]) -> dict[str, float]:
    values = sorted(samples)
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
    }


class Stats:
    """Folds events into request counts, cache hit rate, latencies, errors and provider use."""

    def __init__(self) -> None:
        self.events = 0
        self.received: Counter[str] = Counter()
        self.completed: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.served_from_cache = 0
        self.cache_hits = 0
        self.cache_misses = 0
        self.errors: Counter[str] = Counter()
        self.degraded: Counter[str] = Counter()
        self.providers: Counter[tuple[str, str]] = Counter()
        self.models: Counter[str] = Counter()
        self.languages: Counter[str] = Counter()
        self.provider_failures: Counter[tuple[str, str]] = Counter()
        self.fallbacks: Counter[tuple[str, str]] = Counter()
        self.breakers: dict[str, str] = {}
        self.interrupted = 0  # realtime answers the user spoke over
        self.speculated: Counter[str] = Counter()  # answers begun at a likely end: used, dropped
        self.breaker_opened: Counter[str] = Counter()
        self.latency: defaultdict[str, deque[float]] = defaultdict(
            lambda: deque(maxlen=SAMPLE_WINDOW)
        )
        self.step_latency: defaultdict[str, deque[float]] = defaultdict(
            lambda: deque(maxlen=SAMPLE_WINDOW)
        )

    def apply(self, event: DomainEvent) -> None:
        self.events += 1
        step = STEP_OF.get(type(event))
        if step is not None:
            self.step_latency[step].append(event.latency_ms)  # type: ignore[union-attr]
        if isinstance(event, RequestReceived):
            self.received[event.pipeline] += 1
        elif isinstance(event, RequestCompleted):
            self.completed[event.pipeline] += 1
            self.served_from_cache += event.cached
            self.latency[event.pipeline].append(event.latency_ms)
        elif isinstance(event, RequestFailed):
            self.failed[event.pipeline] += 1
            self.errors[event.code] += 1
        elif isinstance(event, CacheLookedUp):
            if event.hit:
                self.cache_hits += 1
            else:
                self.cache_misses += 1
        elif isinstance(event, SpeechSynthesized):
            self.providers[(event.provider, event.voice)] += 1
        elif isinstance(event, SpeechTranscribed):
            self.models[event.model] += 1
            self.languages[event.language] += 1
        elif isinstance(event, VoiceReplied):
            self.latency["voice_to_voice"].append(event.voice_to_voice_ms)
        elif isinstance(event, ReplyInterrupted):
            self.interrupted += 1
        elif isinstance(event, AnswerSpeculated):
            self.speculated["used" if event.used else "dropped"] += 1
        elif isinstance(event, StepDegraded):
            self.degraded[event.step] += 1
        elif isinstance(event, ProviderFailed):
            self.provider_failures[(event.provider, event.code)] += 1
        elif isinstance(event, ProviderFellBack):
            self.fallbacks[(event.from_provider, event.to_provider)] += 1
        elif isinstance(event, CircuitOpened):
            self.breakers[event.provider] = "open"
            self.breaker_opened[event.provider] += 1
        elif isinstance(event, CircuitHalfOpened):
            self.breakers[event.provider] = "half_open"
        elif isinstance(event, CircuitClosed):
            self.breakers[event.provider] = "closed"

    def snapshot(self) -> dict[str, Any]:
        lookups = self.cache_hits + self.cache_misses
        providers: dict[str, dict[str, Any]] = {}
        for (provider, voice), count in sorted(self.providers.items()):
            entry = providers.setdefault(provider, _provider_entry())
            entry["requests"] += count
            entry["voices"][voice] = count
        for (provider, code), count in sorted(self.provider_failures.items()):
            providers.setdefault(provider, _provider_entry())["failures"][code] = count
        for (source, target), count in sorted(self.fallbacks.items()):
            providers.setdefault(source, _provider_entry())["fell_back_to"][target] = count
        for provider, state in sorted(self.breakers.items()):
            entry = providers.setdefault(provider, _provider_entry())
            entry["breaker"] = state
            entry["breaker_opened"] = self.breaker_opened[provider]
        return {
            "events": self.events,
            "requests": {
                pipeline: {
                    "received": self.received[pipeline],
                    "completed": self.completed[pipeline],
                    "failed": self.failed[pipeline],
                }
                for pipeline in ("tts", "stt")
            },
            "cache": {
                "hits": self.cache_hits,
                "misses": self.cache_misses,
                "hit_rate": round(self.cache_hits / lookups, 4) if lookups else 0.0,
                "served": self.served_from_cache,
            },
            "latency_ms": {
                "pipelines": {
                    p: summarize(s) for p, s in sorted(self.latency.items()) if p in ("tts", "stt")
                },
                "steps": {s: summarize(v) for s, v in sorted(self.step_latency.items())},
            },
            "realtime": {
                "voice_to_voice_ms": summarize(self.latency["voice_to_voice"]),
                "interrupted": self.interrupted,
                "speculative_answers": {
                    "used": self.speculated["used"],
                    "dropped": self.speculated["dropped"],
                },
            },
            "errors": dict(sorted(self.errors.items())),
            "degraded": dict(sorted(self.degraded.items())),
            "providers": providers,
            "models": dict(sorted(self.models.items())),
            "languages": dict(sorted(self.languages.items())),
        }


def _provider_entry() -> dict[str, Any]:
    return {
        "requests": 0,
        "voices": {},
        "failures": {},
        "fell_back_to": {},
        "breaker": "closed",
        "breaker_opened": 0,
    }


def replay(events: list[DomainEvent]) -> Stats:
    stats = Stats()
    for event in events:
        stats.apply(event)
    return stats


class StatsProjector:
    """Keeps a Stats fold up to date with an event log, reading from where it stopped.

    `run` replays the log on start and then follows it; `catch_up` brings the fold up to
    date on demand, so /stats always includes what this process has already appended.
    """

    def __init__(self, events: EventLog, batch: int = 1000) -> None:
        self.log = events
        self.batch = batch
        self.stats = Stats()
        self.position: str | None = None
        self._lock = asyncio.Lock()

    async def catch_up(self) -> Stats:
        """Fold every event appended since the last call, then return the stats."""
        async with self._lock:
            while True:
                entries = await self.log.read(self.position, self.batch)
                for entry_id, event in entries:
                    self.stats.apply(event)
                    self.position = entry_id
                if len(entries) < self.batch:
                    return self.stats

    async def current(self) -> tuple[dict[str, Any], bool]:
        """The /stats snapshot, and whether it is stale: the log is away, so it holds what
        was folded so far."""
        try:
            return (await self.catch_up()).snapshot(), False
        except Exception:
            return self.stats.snapshot(), True

    async def run(
        self, poll_seconds: float = 5.0, retry_seconds: float = 1.0, min_interval: float = 0.1
    ) -> None:
        """Follow the log until cancelled; a failing log is retried, never fatal.

        Under load, folds at most every `min_interval` seconds, in batches: per-event wake-ups
        would cost a round trip each. /stats catches up on demand, so it is never behind.
        """
        failing = False
        while True:
            stop_if_cancelled()
            try:
                await self.catch_up()
                failing = False
                await asyncio.sleep(min_interval)
                await self.log.wait(self.position, poll_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not failing:
                    log.warning("event log unreadable, projection paused: %r", error)
                failing = True
                await asyncio.sleep(retry_seconds)
