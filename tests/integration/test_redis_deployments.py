"""The Redis adapters and the service on Redis you can lose: Sentinel failover and a Cluster.

Real redis-server processes (a primary, a replica, three sentinels; three cluster primaries),
started here on loopback ports.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from adapters.redis_breaker_store import RedisBreakerStore
from adapters.redis_cache import RedisAudioCache
from adapters.redis_event_log import RedisStreamEventLog
from adapters.redis_limits import RedisLimits
from adapters.redis_link import RedisLink
from domain.events import CacheLookedUp
from entrypoints.bootstrap import Container
from entrypoints.settings import Settings
from tests.integration.conftest import RunningServer, sharing_models
from tests.integration.redis_servers import Cluster, SentinelSet, running

NOW = 1_699_999_990.0


@pytest.fixture
def sentinels() -> Iterator[SentinelSet]:
    deployment = SentinelSet()
    with running(deployment):
        yield deployment


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    deployment = Cluster()
    with running(deployment):
        yield deployment


async def use_every_adapter(link: RedisLink, prefix: str) -> None:
    """Cache, limits, breakers and the event log each do one real round trip, or this raises."""
    cache = RedisAudioCache(link, ttl_seconds=60, prefix=f"{prefix}:cache")
    await cache.put("entry", b"audio bytes")
    assert await cache.get("entry") == b"audio bytes"
    limits = RedisLimits(link, prefix=prefix)
    bucket = f"key-{uuid.uuid4().hex[:6]}:requests"
    assert await limits.take(bucket, 1, 1, 60, NOW) == 0.0
    assert await limits.take(bucket, 1, 1, 60, NOW) == pytest.approx(50.0)
    assert await limits.hit(bucket, 1, 60, NOW) == 0.0
    breakers = RedisBreakerStore(link, prefix=prefix)
    await breakers.open("elevenlabs", NOW, 60)
    await breakers.open("piper", NOW + 1, 60)
    opened = await breakers.opened(["elevenlabs", "piper", "other"])
    assert opened == {"elevenlabs": NOW, "piper": NOW + 1}  # one MGET over providers
    stream = link.tag(f"{prefix}:events")
    events = RedisStreamEventLog(link, stream=stream, retention=1000, buffer_max=1000)
    await events.start()
    try:
        event = CacheLookedUp(pipeline_id=uuid.uuid4().hex, occurred_at=NOW, hit=True, latency_ms=1)
        await events.append([event])
        assert await events.flush(10)
        assert event in [e for _, e in await events.read(None, 10_000)]
        blocking = link.blocking_client()
        try:
            assert await blocking.xread({stream: "0-0"}, count=1, block=1000)
        finally:
            await blocking.aclose()
    finally:
        await events.close(1)
    # No fallback was taken (the limits count locally when Redis fails).
    assert link.available, link.reason


async def until_every_adapter_works(link: RedisLink, prefix: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            await use_every_adapter(link, prefix)
            return
        except (redis.RedisError, OSError, AssertionError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_the_adapters_follow_a_failover_to_the_promoted_replica(
    sentinels: SentinelSet,
) -> None:
    link = RedisLink(None, sentinels=sentinels.addresses, timeout=0.5)
    await link.connect()
    prefix = f"sent-{uuid.uuid4().hex[:8]}"
    try:
        await use_every_adapter(link, prefix)
        primary = redis.Redis.from_url(sentinels.primary.url)
        assert primary.wait(1, 10_000) == 1  # the replica has it all before the crash
        sentinels.kill_primary()
        await until_every_adapter_works(link, prefix)  # nothing restarted
        assert sentinels.primary_port() == sentinels.replica.port
        cache = RedisAudioCache(link, ttl_seconds=60, prefix=f"{prefix}:cache")
        assert await cache.get("entry") == b"audio bytes"  # replicated before the crash
    finally:
        await link.close()


async def test_a_demoted_primary_sends_the_adapters_to_the_new_one(
    sentinels: SentinelSet,
) -> None:
    """A failover with both alive: connections to the old primary now answer READONLY."""
    link = RedisLink(None, sentinels=sentinels.addresses, timeout=0.5)
    await link.connect()
    prefix = f"demote-{uuid.uuid4().hex[:8]}"
    try:
        await use_every_adapter(link, prefix)
        watcher: Any = redis.Redis.from_url(sentinels.sentinels[0].url)
        watcher.execute_command("SENTINEL", "FAILOVER", "mymaster")
        deadline = time.monotonic() + 60
        while sentinels.primary_port() != sentinels.replica.port:
            assert time.monotonic() < deadline, "no failover"
            await asyncio.sleep(0.1)
        old = redis.Redis.from_url(sentinels.primary.url)
        deadline = time.monotonic() + 60
        while old.info("replication")["role"] != "slave":
            assert time.monotonic() < deadline, "the old primary was not demoted"
            await asyncio.sleep(0.1)
        await until_every_adapter_works(link, prefix)
        new = redis.Redis.from_url(sentinels.replica.url)
        assert new.exists(f"{prefix}:cache:entry") == 1  # written to the new primary
    finally:
        await link.close()


async def test_the_adapters_work_on_a_cluster_with_keys_spread_over_nodes(
    cluster: Cluster,
) -> None:
    link = RedisLink(None, cluster_nodes=cluster.addresses, timeout=0.5)
    await link.connect()
    prefix = f"clu-{uuid.uuid4().hex[:8]}"
    try:
        await use_every_adapter(link, prefix)
        cache = RedisAudioCache(link, ttl_seconds=60, prefix=f"{prefix}:cache")
        for i in range(30):
            await cache.put(f"text-{i}", b"x")
    finally:
        await link.close()
    nodes = [redis.Redis.from_url(node.url) for node in cluster.nodes]
    holding = [len(node.keys(f"{prefix}:cache:text-*")) for node in nodes]
    assert sum(holding) == 30
    assert sum(1 for n in holding if n) >= 2  # cache entries land on several nodes
    slots = {nodes[0].cluster("keyslot", f"{{{prefix}:breaker}}:{p}") for p in ("a", "b")}
    assert len(slots) == 1  # breaker keys share a hash tag
    stream = f"{{{prefix}:events}}"
    assert sum(len(node.keys(stream)) for node in nodes) == 1  # on its slot's node
    companion = nodes[0].cluster("keyslot", f"{stream}:batch:1")
    assert companion == nodes[0].cluster("keyslot", stream)


def tts(url: str, text: str) -> dict[str, Any]:
    response = httpx.post(f"{url}/api/tts", json={"text": text}, timeout=60)
    assert response.status_code == 200, response.text
    return dict(response.json())


def on_redis(container: Container, **redis: Any) -> RunningServer:
    settings = Settings(
        redis_prefix=f"app-{uuid.uuid4().hex[:8]}", stt_turn_detection="silence", **redis
    )
    return RunningServer(sharing_models(container, settings))


def health_ok(url: str) -> bool:
    return bool(httpx.get(f"{url}/health", timeout=10).json()["status"] == "ok")


def wait_for(check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_the_service_on_sentinel_serves_on_after_the_primary_dies(
    container: Container, sentinels: SentinelSet
) -> None:
    hosts = tuple(f"{h}:{p}" for h, p in sentinels.addresses)
    with on_redis(container, redis_sentinels=hosts) as server:
        wait_for(lambda: health_ok(server.url))
        assert tts(server.url, "Before the failover.")["cached"] is False
        assert tts(server.url, "Before the failover.")["cached"] is True
        sentinels.kill_primary()
        wait_for(lambda: sentinels.primary_port() == sentinels.replica.port)
        wait_for(lambda: health_ok(server.url) and tts(server.url, "After it.")["cached"] is False)
        assert tts(server.url, "After it.")["cached"] is True  # the new primary holds it


def test_the_service_on_a_cluster_serves_from_its_cache(
    container: Container, cluster: Cluster
) -> None:
    with on_redis(container, redis_url=cluster.url) as server:
        wait_for(lambda: health_ok(server.url))
        assert tts(server.url, "Cached in a cluster.")["cached"] is False
        assert tts(server.url, "Cached in a cluster.")["cached"] is True
        assert httpx.get(f"{server.url}/stats", timeout=10).json()["cache"]["hits"] >= 1
