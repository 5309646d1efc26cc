"""In-process event log: the embedded default when no Redis is configured."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from domain.events import DomainEvent


class InMemoryEventLog:
    """Event log port in one process, keeping at least the most recent `retention` events.

    Ids are decimal sequence numbers, so readers resume with `read(after=last_id)`.
    """

    def __init__(self, retention: int = 1_000_000) -> None:
        self.retention = retention
        self._events: list[DomainEvent] = []
        self._first = 0  # sequence number of self._events[0]
        self._appended = asyncio.Event()

    async def append(self, events: Sequence[DomainEvent]) -> None:
        self._events.extend(events)
        self._appended.set()
        self._appended = asyncio.Event()
        # Trim in chunks so appends stay amortized O(1).
        excess = len(self._events) - self.retention
        if excess > self.retention // 4:
            del self._events[:excess]
            self._first += excess

    async def read(self, after: str | None, count: int) -> list[tuple[str, DomainEvent]]:
        start = self._first if after is None else max(self._first, int(after) + 1)
        offset = start - self._first
        return [
            (str(start + i), event) for i, event in enumerate(self._events[offset : offset + count])
        ]

    async def wait(self, after: str | None, seconds: float) -> None:
        last = self._first + len(self._events) - 1
        if (after is None and self._events) or (after is not None and int(after) < last):
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._appended.wait(), seconds)

    def health(self) -> dict[str, object]:
        return {"status": "ok", "kind": "memory", "events": self._first + len(self._events)}
