"""In-process event log: the embedded default when no Redis is configured."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from domain.events import DomainEvent


class InMemoryEventLog:
    """Event log port in one process, keeping the most recent `retention` events.

    Ids are decimal sequence numbers, so readers resume with `read(after=last_id)`. The events
    live in a ring of `retention` slots: a full log overwrites its oldest event on each append,
    one at a time, instead of dropping a quarter of the log at once (a 175 ms stall of the
    event loop at a million events).
    """

    def __init__(self, retention: int = 1_000_000) -> None:
        self.retention = retention
        self._ring: list[DomainEvent] = []
        self._next = 0  # sequence number of the next event appended
        self._appended = asyncio.Event()

    @property
    def _first(self) -> int:
        """Sequence number of the oldest event kept."""
        return max(0, self._next - self.retention)

    async def append(self, events: Sequence[DomainEvent]) -> None:
        for event in events:
            if len(self._ring) < self.retention:
                self._ring.append(event)
            else:
                self._ring[self._next % self.retention] = event
            self._next += 1
        self._appended.set()
        self._appended = asyncio.Event()

    async def read(self, after: str | None, count: int) -> list[tuple[str, DomainEvent]]:
        start = self._first if after is None else max(self._first, int(after) + 1)
        end = min(self._next, start + count)
        ring, size = self._ring, self.retention
        return [(str(n), ring[n % size]) for n in range(start, end)]

    async def wait(self, after: str | None, seconds: float) -> None:
        if (after is None and self._next) or (after is not None and int(after) < self._next - 1):
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._appended.wait()

    def health(self) -> dict[str, object]:
        return {"status": "ok", "kind": "memory", "events": self._next}
