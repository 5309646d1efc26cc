"""One contract for each port with two adapters: in-memory and Redis behave the same."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from adapters.memory_cache import InMemoryAudioCache
from adapters.memory_event_log import InMemoryEventLog
from adapters.redis_cache import RedisAudioCache
from adapters.redis_event_log import RedisStreamEventLog
from adapters.redis_link import RedisLink
from application.ports import AudioCache, EventLog
from domain.events import CacheLookedUp, DomainEvent, RequestReceived
from tests.unit.fakes import FakeClock

TTL = 0.5


@dataclass
class CacheUnderTest:
    cache: AudioCache
    expire: Callable[[], Awaitable[None]]  # lets the TTL pass


@pytest.fixture(params=["memory", "redis"])
async def cache_case(
    request: pytest.FixtureRequest, redis_url: str
) -> AsyncIterator[CacheUnderTest]:
    if request.param == "memory":
        clock = FakeClock()

        async def advance() -> None:
            clock.t += TTL + 0.1

        yield CacheUnderTest(
            InMemoryAudioCache(max_bytes=10**6, ttl_seconds=TTL, clock=clock), advance
        )
        return
    link = RedisLink(redis_url)
    await link.connect()
    # Redis expires keys by its own clock (SET PX): no clock of ours reaches it, so the TTL
    # really passes. Sleeping past it is enough: Redis never serves a key after its PX.
    yield CacheUnderTest(
        RedisAudioCache(link, ttl_seconds=TTL, prefix=f"test-{uuid.uuid4().hex}"),
        lambda: asyncio.sleep(TTL + 0.1),
    )
    await link.close()


@pytest.fixture(params=["memory", "redis"])
async def event_log(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[EventLog]:
    if request.param == "memory":
        yield InMemoryEventLog()
        return
    link = RedisLink(redis_url)
    await link.connect()
    stream = f"test-{uuid.uuid4().hex}:events"
    log = RedisStreamEventLog(link, stream=stream, retention=100_000, buffer_max=100_000)
    await log.start()
    yield log
    await log.close()
    await link.client.delete(stream)
    await link.close()


def received(i: int) -> DomainEvent:
    return RequestReceived(
        pipeline_id=f"p{i}", occurred_at=1e9 + i, pipeline="tts", transport="rest", input_size=i
    )


BINARY = bytes(range(256)) * 40  # every byte value: no text encoding may touch it


async def test_cache_returns_exact_bytes(cache_case: CacheUnderTest) -> None:
    await cache_case.cache.put("k", BINARY)
    assert await cache_case.cache.get("k") == BINARY
    assert await cache_case.cache.get("missing") is None


async def test_cache_overwrites(cache_case: CacheUnderTest) -> None:
    await cache_case.cache.put("k", b"one")
    await cache_case.cache.put("k", b"two")
    assert await cache_case.cache.get("k") == b"two"


async def test_cache_entries_expire(cache_case: CacheUnderTest) -> None:
    await cache_case.cache.put("k", b"soon gone")
    assert await cache_case.cache.get("k") == b"soon gone"  # there until the TTL has passed
    await cache_case.expire()
    assert await cache_case.cache.get("k") is None


async def test_log_reads_back_in_order(event_log: EventLog) -> None:
    events = [received(i) for i in range(25)]
    await event_log.append(events[:10])
    await event_log.append(events[10:])
    entries = await event_log.read(None, 100)
    assert [event for _, event in entries] == events
    ids = [entry_id for entry_id, _ in entries]
    assert len(set(ids)) == 25


async def test_log_resumes_after_an_id_and_pages(event_log: EventLog) -> None:
    await event_log.append([received(i) for i in range(10)])
    first = await event_log.read(None, 4)
    assert [e.pipeline_id for _, e in first] == ["p0", "p1", "p2", "p3"]
    rest = await event_log.read(first[-1][0], 100)
    assert [e.pipeline_id for _, e in rest] == [f"p{i}" for i in range(4, 10)]
    assert await event_log.read(rest[-1][0], 100) == []


async def test_log_keeps_every_field_and_type(event_log: EventLog) -> None:
    lookup = CacheLookedUp(pipeline_id="x", occurred_at=1.5, hit=True, latency_ms=0.25)
    await event_log.append([lookup])
    [(_, event)] = await event_log.read(None, 10)
    assert event == lookup and isinstance(event, CacheLookedUp)


async def test_log_concurrent_appends_all_land(event_log: EventLog) -> None:
    await asyncio.gather(*(event_log.append([received(i), received(i)]) for i in range(50)))
    entries = await event_log.read(None, 1000)
    assert len(entries) == 100


async def test_log_wait_returns_when_an_event_arrives(event_log: EventLog) -> None:
    started = time.monotonic()
    await event_log.wait(None, 0.3)  # nothing yet: waits about the timeout
    assert time.monotonic() - started >= 0.25
    waiter = asyncio.create_task(event_log.wait(None, 5))
    await asyncio.sleep(0.05)
    await event_log.append([received(1)])
    await asyncio.wait_for(waiter, 2)  # woken by the append, not the 5 s timeout
    [(last, _)] = await event_log.read(None, 10)
    started = time.monotonic()
    await event_log.wait(last, 0.3)
    assert time.monotonic() - started >= 0.25


async def test_redis_values_are_stored_as_raw_bytes(redis_url: str) -> None:
    link = RedisLink(redis_url)
    await link.connect()
    prefix = f"test-{uuid.uuid4().hex}"
    await RedisAudioCache(link, ttl_seconds=60, prefix=prefix).put("k", BINARY)
    raw = redis.Redis.from_url(redis_url)
    assert raw.get(f"{prefix}:k") == BINARY
    assert 0 < raw.pttl(f"{prefix}:k") <= 60_000
    raw.delete(f"{prefix}:k")
    await link.close()


async def test_redis_stream_is_capped(redis_url: str) -> None:
    link = RedisLink(redis_url)
    await link.connect()
    stream = f"test-{uuid.uuid4().hex}:events"
    log = RedisStreamEventLog(link, stream=stream, retention=100, buffer_max=10_000, batch=50)
    await log.start()
    await log.append([received(i) for i in range(2000)])
    assert await log.flush(10)
    raw: Any = redis.Redis.from_url(redis_url)
    assert 100 <= raw.xlen(stream) < 2000  # approximate trimming: whole nodes at a time
    entry = raw.xrange(stream, count=1)[0][1]
    assert list(entry) == [b"e"]  # one msgpack field per event
    raw.delete(stream)
    await log.close()
    await link.close()
