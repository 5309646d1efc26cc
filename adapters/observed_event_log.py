"""An event log that shows each appended batch to subscribers (metrics, traces) first."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from application.ports import EventLog
from domain.events import DomainEvent

log = logging.getLogger(__name__)

Subscriber = Callable[[Sequence[DomainEvent]], None]


class ObservedEventLog:
    """Wraps the real log; a failing subscriber is logged and never fails the append."""

    def __init__(self, inner: EventLog, subscribers: Sequence[Subscriber]) -> None:
        self.inner = inner
        self.subscribers = list(subscribers)

    async def append(self, events: Sequence[DomainEvent]) -> None:
        for subscriber in self.subscribers:
            try:
                subscriber(events)
            except Exception:
                log.exception("event subscriber failed")
        await self.inner.append(events)

    async def read(self, after: str | None, count: int) -> list[tuple[str, DomainEvent]]:
        return await self.inner.read(after, count)

    async def wait(self, after: str | None, seconds: float) -> None:
        await self.inner.wait(after, seconds)
