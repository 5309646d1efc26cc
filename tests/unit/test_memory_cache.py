"""The in-memory audio cache: LRU order, byte bound and time to live."""

from __future__ import annotations

from adapters.memory_cache import InMemoryAudioCache
from tests.unit.fakes import FakeClock


def make(max_bytes: int = 100, ttl: float = 10.0) -> tuple[InMemoryAudioCache, FakeClock]:
    clock = FakeClock()
    return InMemoryAudioCache(max_bytes=max_bytes, ttl_seconds=ttl, clock=clock), clock


async def test_get_returns_what_was_put() -> None:
    cache, _ = make()
    await cache.put("a", b"1234")
    assert await cache.get("a") == b"1234"
    assert await cache.get("b") is None


async def test_least_recently_used_is_evicted_past_the_byte_bound() -> None:
    cache, _ = make(max_bytes=100)
    await cache.put("a", b"x" * 40)
    await cache.put("b", b"x" * 40)
    await cache.get("a")  # a is now more recent than b
    await cache.put("c", b"x" * 40)
    assert await cache.get("b") is None
    assert await cache.get("a") is not None and await cache.get("c") is not None
    assert cache.size == 80


async def test_entries_expire_after_the_ttl() -> None:
    cache, clock = make(ttl=10.0)
    await cache.put("a", b"abc")
    clock.t += 9.0
    assert await cache.get("a") == b"abc"
    clock.t += 2.0
    assert await cache.get("a") is None
    assert cache.size == 0 and len(cache) == 0


async def test_replacing_a_key_keeps_the_size_right() -> None:
    cache, _ = make()
    await cache.put("a", b"x" * 30)
    await cache.put("a", b"x" * 10)
    assert cache.size == 10


async def test_a_value_larger_than_the_cache_is_not_stored() -> None:
    cache, _ = make(max_bytes=10)
    await cache.put("small", b"x")
    await cache.put("huge", b"x" * 11)
    assert await cache.get("huge") is None
    assert await cache.get("small") == b"x"
