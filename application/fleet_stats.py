"""One stats projection for the whole fleet: one leader folds the shared event log, everyone
answers /stats from what it publishes.

Redis reads then grow with events, not with events x instances. The leader holds a lease on
the StatsBoard; when it dies the lease lapses and another instance takes over, replaying the
log (bounded by its retention) before it publishes, so the published position never goes
back. An instance's /stats includes the events it has appended itself: it waits (briefly)
for the published position to reach the log's head.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from application.background import stop_if_cancelled
from application.ports import EventLog, PublishedStats, StatsBoard
from application.stats import Stats, StatsProjector
from domain.events import DomainEvent

log = logging.getLogger(__name__)


class FleetStats:
    """Leads (folds and publishes) or follows (reads what the leader published)."""

    def __init__(
        self,
        projector: StatsProjector,
        board: StatsBoard,
        *,
        owner: str | None = None,
        lease_seconds: float = 3.0,
        renew_seconds: float = 1.0,
        publish_interval: float = 0.1,
        wait_seconds: float = 1.0,
        poll_seconds: float = 0.02,
    ) -> None:
        self.projector = projector
        self.board = board
        self.owner = owner or uuid.uuid4().hex
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.publish_interval = publish_interval  # at most ~10 publishes a second from `run`
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds
        self.leading = False
        self.appended = 0  # events this process appended through `track`
        self._covered = 0  # of those, how many a snapshot it answered is known to include
        self._last: PublishedStats | None = None
        self._published: str | None = None
        self._fresh = True  # nothing published yet in this term of leadership
        self._leads = asyncio.Event()
        self._publishing = asyncio.Lock()  # a fold and its publish, in order

    def track(self, events: EventLog) -> EventLog:
        """The log as the use cases should see it: counts what this process appends."""
        return _Counted(events, self)

    async def run(self) -> None:
        """Hold (or try for) the lease and, while leading, fold and publish; until cancelled.

        The lease is renewed by a task of its own, so a long replay does not let it lapse.
        """
        async with asyncio.TaskGroup() as group:
            group.create_task(self._hold_lease())
            group.create_task(self._fold_while_leading())

    async def release(self) -> None:
        """Give the lease up at shutdown, so another instance need not wait for it to lapse."""
        if self.leading:
            self._step_down()
            try:
                await self.board.release(self.owner)
            except Exception as error:
                log.warning("stats lease not released (it lapses by itself): %r", error)

    async def current(self) -> tuple[dict[str, Any], bool]:
        """The /stats snapshot and whether it is stale (Redis or the leader away, or this
        instance's own events not yet in it)."""
        if self.leading:
            try:
                await self._fold_and_publish()
                return self.projector.stats.snapshot(), not self.leading
            except Exception:
                return self.projector.stats.snapshot(), True
        try:
            published, leader, covered = await self._fetch_covering()
        except Exception:
            published, leader, covered = None, False, False
        if published is not None:
            self._last = published
        stale = published is None or not leader or not covered
        if self._last is None:
            return Stats().snapshot(), stale
        return dict(self._last.snapshot), stale

    async def _fetch_covering(self) -> tuple[PublishedStats | None, bool, bool]:
        """The published stats, waiting up to `wait_seconds` for them to include this
        process's own events."""
        appended = self.appended
        if appended == self._covered:
            published, leader = await self.board.fetch()
            return published, leader, True
        target = await self.board.head()
        deadline = asyncio.get_running_loop().time() + self.wait_seconds
        while True:
            published, leader = await self.board.fetch()
            if self._reaches(published.position if published else None, target):
                self._covered = appended
                return published, leader, True
            if not leader or asyncio.get_running_loop().time() >= deadline:
                return published, leader, False  # nobody will publish it soon
            await asyncio.sleep(self.poll_seconds)

    async def _hold_lease(self) -> None:
        failing = False
        while True:
            stop_if_cancelled()
            try:
                if self.leading:
                    if not await self.board.renew(self.owner, self.lease_seconds):
                        log.warning("stats lease lost: following")
                        self._step_down()
                elif await self.board.acquire(self.owner, self.lease_seconds):
                    log.info("stats lease taken: folding the event log for the fleet")
                    self.leading, self._fresh = True, True
                    self._leads.set()
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the lease lapses by itself if this goes on
                if not failing:
                    log.warning("stats lease unreachable: %r", error)
                failing = True
            await asyncio.sleep(self.renew_seconds)

    async def _fold_while_leading(self) -> None:
        failing = False
        while True:
            stop_if_cancelled()
            await self._leads.wait()
            try:
                await self._fold_and_publish()
                failing = False
                await asyncio.sleep(self.publish_interval)
                position = self.projector.position
                await self.projector.log.wait(position, self.renew_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not failing:
                    log.warning("event log unreadable, stats not published: %r", error)
                failing = True
                await asyncio.sleep(self.renew_seconds)

    async def _fold_and_publish(self) -> None:
        async with self._publishing:
            stats = await self.projector.catch_up()
            position = self.projector.position
            if not self.leading or (position == self._published and not self._fresh):
                return
            if self._fresh:  # a new term: never publish behind what is already out there
                out_there, _ = await self.board.fetch()
                if out_there is not None and not self._reaches(position, out_there.position):
                    return
            published = PublishedStats(position=position, snapshot=stats.snapshot())
            if await self.board.publish(self.owner, published):
                self._published, self._fresh, self._last = position, False, published
            else:
                log.warning("stats lease lost while publishing: following")
                self._step_down()

    def _reaches(self, position: str | None, target: str | None) -> bool:
        if target is None:
            return True
        return position is not None and self.board.covers(position, target)

    def _step_down(self) -> None:
        self.leading = False
        self._leads.clear()


class _Counted:
    """An EventLog that counts the events this process appends (for read-your-writes)."""

    def __init__(self, inner: EventLog, fleet: FleetStats) -> None:
        self.inner = inner
        self.fleet = fleet

    async def append(self, events: Sequence[DomainEvent]) -> None:
        self.fleet.appended += len(events)
        await self.inner.append(events)

    async def read(self, after: str | None, count: int) -> list[tuple[str, DomainEvent]]:
        return await self.inner.read(after, count)

    async def wait(self, after: str | None, seconds: float) -> None:
        await self.inner.wait(after, seconds)
