"""One stats projection for the fleet: who leads, what followers answer, and takeovers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from adapters.memory_event_log import InMemoryEventLog
from application.fleet_stats import FleetStats
from application.ports import PublishedStats
from application.stats import StatsProjector
from domain.events import RequestReceived


class FakeBoard:
    """The StatsBoard in memory, over an InMemoryEventLog; leases lapse when the test says."""

    def __init__(self, log: InMemoryEventLog) -> None:
        self.log = log
        self.holder: str | None = None
        self.published: PublishedStats | None = None
        self.publishes = 0
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("board away")

    def lapse(self) -> None:
        """The lease's time runs out (its holder stopped renewing)."""
        self.holder = None

    async def acquire(self, owner: str, seconds: float) -> bool:
        self._check()
        if self.holder is None:
            self.holder = owner
        return self.holder == owner

    async def renew(self, owner: str, seconds: float) -> bool:
        self._check()
        return self.holder == owner

    async def release(self, owner: str) -> None:
        self._check()
        if self.holder == owner:
            self.holder = None

    async def publish(self, owner: str, stats: PublishedStats) -> bool:
        self._check()
        if self.holder != owner:
            return False
        self.published = stats
        self.publishes += 1
        return True

    async def fetch(self) -> tuple[PublishedStats | None, bool]:
        self._check()
        return self.published, self.holder is not None

    async def head(self) -> str | None:
        self._check()
        newest = self.log.health()["events"]
        return None if newest == 0 else str(int(str(newest)) - 1)

    def covers(self, position: str, target: str) -> bool:
        return int(position) >= int(target)


def fleet_member(log: InMemoryEventLog, board: FakeBoard, owner: str) -> FleetStats:
    return FleetStats(
        StatsProjector(log),
        board,
        owner=owner,
        renew_seconds=0.01,
        publish_interval=0.01,
        wait_seconds=5.0,
        poll_seconds=0.01,
    )


def received(n: int) -> list[RequestReceived]:
    return [
        RequestReceived(
            pipeline_id=f"p{i}", occurred_at=0.0, pipeline="tts", transport="test", input_size=1
        )
        for i in range(n)
    ]


async def until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(10.0):  # generous: a loaded machine
        for _ in iter(check, True):  # polls: the members run in tasks beside this one
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(*members: FleetStats) -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks = [asyncio.create_task(member.run()) for member in members]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
def log() -> InMemoryEventLog:
    return InMemoryEventLog()


@pytest.fixture
def board(log: InMemoryEventLog) -> FakeBoard:
    return FakeBoard(log)


async def test_one_leads_and_everyone_answers_the_same(
    log: InMemoryEventLog, board: FakeBoard
) -> None:
    members = [fleet_member(log, board, name) for name in ("a", "b", "c")]
    async with running(*members):
        await until(lambda: any(m.leading for m in members))
        assert sum(m.leading for m in members) == 1
        follower = next(m for m in members if not m.leading)
        # What a follower appended is in its very next answer (it waits for the leader).
        await follower.track(log).append(received(7))
        snapshot, stale = await follower.current()
        assert snapshot["requests"]["tts"]["received"] == 7 and not stale
        answers = [await m.current() for m in members]
        assert all(answer == (snapshot, False) for answer in answers)
        # Followers fold nothing themselves.
        assert [m.projector.stats.events for m in members if not m.leading] == [0, 0]


async def test_a_new_leader_takes_over_without_going_back(
    log: InMemoryEventLog, board: FakeBoard
) -> None:
    first, second = fleet_member(log, board, "a"), fleet_member(log, board, "b")
    async with running(first) as (first_task,):
        await until(lambda: first.leading)
        await log.append(received(5))
        await until(lambda: board.published is not None and board.published.position == "4")
        async with running(second):
            first_task.cancel()  # dies without releasing the lease
            await asyncio.gather(first_task, return_exceptions=True)
            assert not second.leading
            board.lapse()
            await until(lambda: second.leading)
            await second.track(log).append(received(2))
            snapshot, stale = await second.current()
            assert snapshot["events"] == 7 and not stale
            assert board.published is not None and board.published.position == "6"


async def test_a_leader_never_publishes_behind_what_is_out_there(board: FakeBoard) -> None:
    board.published = PublishedStats(position="9", snapshot={"events": 10})
    shorter = InMemoryEventLog()  # as if this leader could read less than its predecessor
    await shorter.append(received(3))
    member = fleet_member(shorter, board, "a")
    async with running(member):
        await until(lambda: member.leading)
        await until(lambda: member.projector.stats.events == 3)
        await member.current()  # one more fold and publish, in this task
    assert board.published.position == "9" and board.publishes == 0


async def test_a_deposed_leader_cannot_publish(log: InMemoryEventLog, board: FakeBoard) -> None:
    member = fleet_member(log, board, "a")
    async with running(member):
        await until(lambda: member.leading)
        board.holder = "b"  # its lease lapsed while it was paused; b took it
        await log.append(received(1))
        await until(lambda: not member.leading)
    assert board.published is None or board.published.position != "0"


async def test_stale_when_the_board_or_the_leader_is_away(
    log: InMemoryEventLog, board: FakeBoard
) -> None:
    leader, follower = fleet_member(log, board, "a"), fleet_member(log, board, "b")
    async with running(leader) as (leader_task,):
        await until(lambda: leader.leading)
        await log.append(received(4))
        await until(lambda: board.published is not None and board.published.position == "3")
        known, stale = await follower.current()
        assert known["events"] == 4 and not stale
        board.down = True
        assert await follower.current() == (known, True)  # the last known, marked stale
        board.down = False
        leader_task.cancel()
        await asyncio.gather(leader_task, return_exceptions=True)
        board.lapse()  # nobody leads now
        assert await follower.current() == (known, True)


async def test_release_frees_the_lease_at_once(log: InMemoryEventLog, board: FakeBoard) -> None:
    member = fleet_member(log, board, "a")
    async with running(member):
        await until(lambda: member.leading)
    await member.release()
    assert board.holder is None and not member.leading
