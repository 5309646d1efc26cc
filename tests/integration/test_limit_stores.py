"""The limit store contract, in memory and on Redis; Redis counts are shared by instances."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from adapters.memory_limits import InMemoryLimits
from adapters.redis_limits import RedisLimits
from adapters.redis_link import RedisLink
from application.ports import LimitStore
from tests.integration.redis_server import RedisProcess

NOW = 1_699_999_990.0  # 10 s into a minute window (1_699_999_980 is a multiple of 60)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[LimitStore]:
    if request.param == "memory":
        yield InMemoryLimits()
        return
    link = RedisLink(redis_url)
    await link.connect()
    yield RedisLimits(link, prefix=f"test-{uuid.uuid4().hex}")
    await link.close()


async def test_take_charges_until_the_limit_then_says_how_long_to_wait(store: LimitStore) -> None:
    for _ in range(3):
        assert await store.take("k:requests", 1, 3, 60, NOW) == 0.0
    assert await store.take("k:requests", 1, 3, 60, NOW) == pytest.approx(50.0)
    assert await store.take("other:requests", 1, 3, 60, NOW) == 0.0  # keys are separate
    assert await store.take("k:requests", 1, 3, 60, NOW + 50) == 0.0  # the next window


async def test_hit_holds_over_any_window_across_boundaries(store: LimitStore) -> None:
    """A flood every 0.25 s for 3 minutes, straddling minute boundaries: never more than the
    limit in any 60 s, the limit is reached again each time the window moves on, and the wait
    announced to a refused caller is exactly when the next one gets through."""
    limit, step = 10, 0.25
    admitted: list[float] = []
    refused: list[tuple[float, float]] = []
    for i in range(720):
        now = NOW + 40 + i * step  # starts 10 s before a minute boundary
        wait = await store.hit("k:requests", limit, 60, now)
        if wait:
            refused.append((now, wait))
        else:
            admitted.append(now)
    busiest = max(sum(1 for t in admitted if start <= t < start + 60) for start in admitted)
    assert busiest == limit
    assert len(admitted) == 3 * limit
    for now, wait in refused:
        following = [t for t in admitted if t > now]
        if following:
            assert now + wait <= following[0] < now + wait + step


async def test_hit_says_when_the_oldest_leaves(store: LimitStore) -> None:
    for offset in (0.0, 5.0, 10.0):
        assert await store.hit("k:requests", 3, 60, NOW + offset) == 0.0
    assert await store.hit("k:requests", 3, 60, NOW + 20) == pytest.approx(40.0)
    assert await store.hit("k:requests", 3, 60, NOW + 60) == 0.0  # the first one left
    assert await store.hit("k:requests", 3, 60, NOW + 61) == pytest.approx(4.0)
    assert await store.hit("other:requests", 3, 60, NOW + 61) == 0.0  # keys are separate


async def test_take_is_all_or_nothing(store: LimitStore) -> None:
    assert await store.take("k:chars", 250, 300, 86_400, NOW) == 0.0
    assert await store.take("k:chars", 60, 300, 86_400, NOW) > 0  # refused, nothing charged
    assert await store.take("k:chars", 50, 300, 86_400, NOW) == 0.0  # exactly the limit


async def test_add_charges_past_the_limit(store: LimitStore) -> None:
    assert await store.add("k:seconds", 15.5, 86_400, NOW) == pytest.approx(15.5)
    assert await store.add("k:seconds", 15.5, 86_400, NOW) == pytest.approx(31.0)
    assert await store.take("k:seconds", 1e-9, 20, 86_400, NOW) > 0


async def test_join_counts_live_members_and_expires_stale_ones(store: LimitStore) -> None:
    assert await store.join("k:conns", "a", 2, 120, NOW)
    assert await store.join("k:conns", "b", 2, 120, NOW)
    assert not await store.join("k:conns", "c", 2, 120, NOW)
    assert await store.join("k:conns", "a", 2, 120, NOW + 1)  # a refresh, not a new member
    await store.leave("k:conns", "b")
    assert await store.join("k:conns", "c", 2, 120, NOW)
    assert await store.join("k:conns", "d", 2, 120, NOW + 200)  # a and c expired


async def test_count_reads_the_moving_window_without_counting(store: LimitStore) -> None:
    assert await store.count("k:requests", 60, NOW) == 0
    for offset in (0.0, 5.0, 10.0):
        assert await store.hit("k:requests", 3, 60, NOW + offset) == 0.0
    assert await store.count("k:requests", 60, NOW + 10) == 3
    assert await store.count("k:requests", 60, NOW + 10) == 3  # reading counts nothing
    assert await store.hit("k:requests", 3, 60, NOW + 20) > 0  # refused: not counted
    assert await store.count("k:requests", 60, NOW + 20) == 3
    assert await store.count("k:requests", 60, NOW + 60) == 2  # the first one left
    assert await store.count("k:requests", 60, NOW + 70) == 0
    assert await store.count("other:requests", 60, NOW) == 0  # keys are separate


async def test_total_reads_the_fixed_window_without_changing_it(store: LimitStore) -> None:
    assert await store.total("k:chars", 86_400, NOW) == 0.0
    assert await store.take("k:chars", 250, 300, 86_400, NOW) == 0.0
    assert await store.add("k:chars", 12.5, 86_400, NOW) == pytest.approx(262.5)
    assert await store.total("k:chars", 86_400, NOW) == pytest.approx(262.5)
    assert await store.total("k:chars", 86_400, NOW) == pytest.approx(262.5)
    assert await store.take("k:chars", 60, 300, 86_400, NOW) > 0  # refused: not charged
    assert await store.total("k:chars", 86_400, NOW) == pytest.approx(262.5)
    assert await store.add("k:chars", -2.5, 86_400, NOW) == pytest.approx(260.0)  # a refund
    assert await store.total("k:chars", 86_400, NOW) == pytest.approx(260.0)
    assert await store.total("k:chars", 86_400, NOW + 86_400) == 0.0  # the next day
    assert await store.total("other:chars", 86_400, NOW) == 0.0


async def test_members_reads_the_live_members_of_a_group(store: LimitStore) -> None:
    assert await store.members("k:conns", NOW) == 0
    assert await store.join("k:conns", "a", 3, 120, NOW)
    assert await store.join("k:conns", "b", 3, 120, NOW + 10)
    assert await store.join("k:conns", "a", 3, 120, NOW + 20)  # a refresh, not a new member
    assert await store.members("k:conns", NOW + 20) == 2
    await store.leave("k:conns", "b")
    assert await store.members("k:conns", NOW + 20) == 1
    assert await store.members("k:conns", NOW + 150) == 0  # a expired
    assert await store.members("other:conns", NOW) == 0


async def test_first_use_is_true_once(store: LimitStore) -> None:
    name = f"token:{uuid.uuid4().hex}"
    assert await store.first_use(name, 60)
    assert not await store.first_use(name, 60)


async def test_two_instances_share_counts_through_redis(redis_url: str) -> None:
    prefix = f"test-{uuid.uuid4().hex}"
    links = [RedisLink(redis_url), RedisLink(redis_url)]
    for link in links:
        await link.connect()
    first, second = (RedisLimits(link, prefix=prefix) for link in links)
    results = await asyncio.gather(
        *(store.take("k:requests", 1, 10, 60, NOW) for store in [first, second] * 10)
    )
    assert sorted(results).count(0.0) == 10  # exactly the limit, across both instances
    hits = await asyncio.gather(
        *(store.hit("k:minute", 7, 60, NOW) for store in [first, second] * 20)
    )
    assert hits.count(0.0) == 7 and all(wait == pytest.approx(60.0) for wait in hits if wait)
    assert await first.join("k:conns", "a", 1, 120, NOW)
    assert not await second.join("k:conns", "b", 1, 120, NOW)
    token = f"token:{uuid.uuid4().hex}"
    assert await first.first_use(token, 60)
    assert not await second.first_use(token, 60)  # replay on another instance
    for link in links:
        await link.close()


async def test_redis_away_falls_back_to_local_counts() -> None:
    link = RedisLink("redis://127.0.0.1:1/0", timeout=0.2)  # nothing listens there
    await link.connect()
    store = RedisLimits(link, prefix="away")
    assert await store.take("k:requests", 1, 1, 60, NOW) == 0.0
    assert await store.take("k:requests", 1, 1, 60, NOW) > 0  # still limited, in process
    assert await store.first_use("token:x", 60) and not await store.first_use("token:x", 60)
    assert await store.total("k:requests", 60, NOW) == 1.0  # reads fall back too
    assert await store.hit("k:minute", 5, 60, NOW) == 0.0
    assert await store.count("k:minute", 60, NOW) == 1
    assert await store.join("k:conns", "a", 5, 120, NOW)
    assert await store.members("k:conns", NOW) == 1
    await link.close()


async def test_an_outage_spends_only_each_instances_share_then_merges_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two instances on a Redis that goes away and comes back (with its data, as a failover's
    new primary has it): while away each spends at most its share of what it last knew was
    left; on return what each counted goes into the shared counters, once."""
    monkeypatch.setattr("adapters.redis_limits.BEAT_SECONDS", 0.0)  # both know of the other
    server = RedisProcess()
    server.start()
    links = [RedisLink(server.url, timeout=0.3, max_backoff=0.2) for _ in range(2)]
    try:
        for link in links:
            await link.connect()
        first, second = (RedisLimits(link, prefix="fleet") for link in links)
        await second.take("k:chars", 1, 10, 86_400, NOW)
        for _ in range(4):
            assert await first.take("k:chars", 1, 10, 86_400, NOW) == 0.0
        assert await second.take("k:chars", 0, 10, 86_400, NOW) == 0.0  # knows 5 are used
        server.stop()
        # Both think 5 of 10 are left; two instances: 2.5 each.
        spent = [0, 0]
        for which, store in enumerate((first, second)):
            while await store.take("k:chars", 1, 10, 86_400, NOW) == 0.0:
                spent[which] += 1
        assert spent == [2, 2]
        token = f"token:{uuid.uuid4().hex}"
        assert await first.first_use(token, 60)
        assert await first.hit("k:minute", 10, 60, NOW) == 0.0
        server.start()
        for link in links:
            async with asyncio.timeout(30):
                await link.wait_up()
        assert await first.total("k:chars", 86_400, NOW) == 7.0  # 5 + first's 2
        assert await second.total("k:chars", 86_400, NOW) == 9.0  # + second's 2, once
        assert await first.total("k:chars", 86_400, NOW) == 9.0
        assert await second.take("k:chars", 1, 10, 86_400, NOW) == 0.0
        assert await first.take("k:chars", 1, 10, 86_400, NOW) > 0  # the limit, shared again
        assert not await second.first_use(token, 60)  # used during the outage, elsewhere
        assert await second.count("k:minute", 60, NOW) == 1
    finally:
        for link in links:
            await link.close()
        server.kill()
