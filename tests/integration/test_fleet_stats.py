"""One stats projection for the fleet on a real Redis: three instances in one process, each
with its own connections, sharing one stream and one lease (own key prefix)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from adapters.redis_event_log import RedisStreamEventLog
from adapters.redis_link import RedisLink
from adapters.redis_stats_board import RedisStatsBoard
from application.fleet_stats import FleetStats
from application.stats import StatsProjector
from domain.events import DomainEvent, RequestReceived

LEASE_S = 1.0  # short, so that a takeover is quick; renewed every 0.2 s


@dataclass
class Instance:
    link: RedisLink
    events: RedisStreamEventLog
    fleet: FleetStats
    task: asyncio.Task[None] | None = None

    async def append(self, n: int) -> None:
        await self.fleet.track(self.events).append(received(n))

    async def stats(self) -> tuple[dict[str, object], bool]:
        return await self.fleet.current()


def received(n: int) -> list[DomainEvent]:
    return [
        RequestReceived(
            pipeline_id=uuid.uuid4().hex,
            occurred_at=0.0,
            pipeline="tts",
            transport="t",
            input_size=1,
        )
        for _ in range(n)
    ]


async def start_instance(url: str, prefix: str) -> Instance:
    link = RedisLink(url)
    await link.connect()
    events = RedisStreamEventLog(
        link, stream=f"{prefix}:events", retention=100_000, buffer_max=100_000
    )
    await events.start()
    board = RedisStatsBoard(events, prefix=prefix)
    fleet = FleetStats(StatsProjector(events), board, lease_seconds=LEASE_S, renew_seconds=0.2)
    instance = Instance(link, events, fleet)
    instance.task = asyncio.create_task(fleet.run())
    return instance


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    try:
        async with asyncio.timeout(20):  # generous: a loaded machine
            while True:
                if await check():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"no {what} in 20 s") from None


@pytest.fixture
async def fleet(redis_url: str) -> AsyncIterator[tuple[list[Instance], str]]:
    prefix = f"test-fleet-{uuid.uuid4().hex[:8]}"
    instances = [await start_instance(redis_url, prefix) for _ in range(3)]
    yield instances, prefix
    for instance in instances:
        if instance.task is not None:
            instance.task.cancel()
            await asyncio.gather(instance.task, return_exceptions=True)
        await instance.fleet.release()
        await instance.events.close()
        await instance.link.close()
    raw = aioredis.Redis.from_url(redis_url)
    await raw.delete(f"{prefix}:events", "{" + prefix + ":stats}:leader")
    await raw.delete("{" + prefix + ":stats}:snapshot")
    await raw.aclose()


def leaders(instances: list[Instance]) -> list[Instance]:
    return [i for i in instances if i.fleet.leading]


async def test_one_instance_folds_and_every_instance_answers_alike(
    fleet: tuple[list[Instance], str], redis_url: str
) -> None:
    instances, prefix = fleet

    async def one_leads() -> bool:
        return len(leaders(instances)) == 1

    await until(one_leads, "a leader")
    leader = leaders(instances)[0]
    raw = aioredis.Redis.from_url(redis_url)
    assert await raw.get("{" + prefix + ":stats}:leader") == leader.fleet.owner.encode()
    await raw.aclose()
    follower = next(i for i in instances if i is not leader)
    await follower.append(5)
    # Read-your-writes: the follower's very next /stats has its own events.
    snapshot, stale = await follower.stats()
    assert snapshot["requests"]["tts"]["received"] == 5 and not stale  # type: ignore[index]
    answers = [await i.stats() for i in instances]
    assert answers == [(snapshot, False)] * 3
    # Only the leader read the stream.
    assert [i.fleet.projector.stats.events for i in instances if i is not leader] == [0, 0]


async def test_a_dead_leader_is_replaced_and_the_stats_never_go_back(
    fleet: tuple[list[Instance], str],
) -> None:
    instances, _ = fleet

    async def one_leads() -> bool:
        return len(leaders(instances)) == 1

    await until(one_leads, "a leader")
    old = leaders(instances)[0]
    await old.append(4)
    assert (await old.stats())[0]["events"] == 4
    assert old.task is not None
    old.task.cancel()  # dies without releasing: the others wait for the lease to lapse
    await asyncio.gather(old.task, return_exceptions=True)
    old.task = None
    survivors = [i for i in instances if i is not old]
    seen: list[int] = []

    async def taken_over() -> bool:
        await survivors[0].append(1)  # traffic goes on meanwhile
        snapshot, _ = await survivors[1].stats()
        seen.append(int(snapshot["events"]))  # type: ignore[call-overload]
        return any(i.fleet.leading for i in survivors)

    await until(taken_over, "a new leader")
    new = leaders(survivors)[0]
    await new.append(3)
    for instance in survivors:
        snapshot, stale = await instance.stats()
        seen.append(int(snapshot["events"]))  # type: ignore[call-overload]
        assert not stale
    appended = 4 + (len(seen) - len(survivors)) + 3
    assert seen == sorted(seen), seen  # never backwards
    assert seen[-1] == appended and seen[-2] == appended
