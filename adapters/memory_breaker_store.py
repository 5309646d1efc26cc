"""Circuit openings in this process: the embedded default, and the store shared by the
services of one process (tests, and instances sharing a process)."""

from __future__ import annotations

from collections.abc import Sequence

from application.ports import Clock


class InMemoryBreakerStore:
    """BreakerStore port in one process; an opening lapses after its cool-down."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._open: dict[str, tuple[float, float]] = {}  # provider -> (opened at, until)

    async def opened(self, providers: Sequence[str]) -> dict[str, float]:
        now = self.clock.now()
        return {
            p: opened_at
            for p in providers
            if (entry := self._open.get(p)) is not None
            for opened_at, until in [entry]
            if until > now
        }

    async def open(self, provider: str, opened_at: float, seconds: float) -> None:
        current = self._open.get(provider)
        now = self.clock.now()
        if current is None or current[0] < opened_at or current[1] <= now:
            self._open[provider] = (opened_at, now + seconds)

    async def close(self, provider: str) -> None:
        self._open.pop(provider, None)
