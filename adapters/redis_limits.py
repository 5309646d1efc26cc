"""Limit counters in Redis, shared by every instance; this process's counters while it is away.

Each check is one atomic Lua call, so two instances never both take the last unit. While Redis
is away (an outage, a Sentinel failover), an instance counts locally, but only up to its share
of what it last knew was left (the rest divided by the live instances), so the fleet cannot
spend a quota N times over; once Redis answers again, what was counted locally is added to the
shared counters before anything else, so a key never gets the outage's allowance twice.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from typing import Any

from adapters.memory_limits import InMemoryLimits
from adapters.redis_link import DOWN, RedisLink, RedisUnavailable

log = logging.getLogger(__name__)

# Returns {taken, used after}: the instance remembers what is used for an outage to come.
_TAKE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return {0, tostring(used)} end
local total = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, total}
"""
# A moving window: the times of the last `limit` hits in a sorted set (members made unique
# by a nonce), so the limit holds over any span, and across instances.
_HIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[3])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], -ARGV[2], -ARGV[2], 'WITHSCORES')
  return tostring(oldest[2] + ARGV[3] - ARGV[1])
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(ARGV[3]))
return '0'
"""
_ADD = """
local total = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return total
"""
_TOTAL = """
return redis.call('GET', KEYS[1]) or '0'
"""
# The live instances, for each one's share of a quota while Redis is away.
_BEAT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return redis.call('ZCARD', KEYS[1])
"""
BEAT_SECONDS = 5.0
ALIVE_SECONDS = 15  # an instance that has not beaten for this long no longer counts
KNOWN_MAX = 10_000  # remembered window totals (and owed ones), the oldest forgotten first
_JOIN = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local known = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not known and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisLimits:
    """LimitStore port on Redis; falls back to in-process counters while Redis is away."""

    def __init__(self, link: RedisLink, *, prefix: str) -> None:
        self.link = link
        self.prefix = f"{prefix}:limits:"
        self.fallback = InMemoryLimits()
        self.instance = uuid.uuid4().hex
        self.instances = 1  # live instances at the last heartbeat
        self._beat_at = 0.0
        self._known: dict[str, float] = {}  # window key -> used, as Redis last said
        self._owed: dict[str, tuple[float, int]] = {}  # window key -> (counted here, seconds)
        self._owed_hits: list[tuple[str, float, float]] = []  # (key, time, window)
        self._owed_names: dict[str, float] = {}  # single-use name -> seconds to keep it
        self._merging = asyncio.Lock()
        self._take = link.client.register_script(_TAKE)
        self._hit = link.client.register_script(_HIT)
        self._add = link.client.register_script(_ADD)
        self._join = link.client.register_script(_JOIN)
        self._total = link.client.register_script(_TOTAL)
        self._beat = link.client.register_script(_BEAT)
        self._warned = 0.0

    def _window_key(self, bucket: str, window_seconds: int, now: float) -> str:
        return f"{self.prefix}{bucket}:{int(now // window_seconds)}"

    async def take(
        self, bucket: str, amount: float, limit: float, window_seconds: int, now: float
    ) -> float:
        key = self._window_key(bucket, window_seconds, now)
        taken = await self._call(self._take, [key], [amount, limit, window_seconds])
        if taken is not None:
            self._remember(key, float(taken[1]))
            return 0.0 if int(taken[0]) else window_seconds - now % window_seconds
        share = (limit - self._known.get(key, 0.0)) / self.instances
        wait = await self.fallback.take(bucket, amount, share, window_seconds, now)
        if not wait:
            self._owe(key, amount, window_seconds)
        return wait

    async def hit(self, bucket: str, limit: int, window_seconds: float, now: float) -> float:
        key = f"{self.prefix}{bucket}:recent"
        args = [repr(now), limit, window_seconds, f"{now!r}:{secrets.token_hex(6)}"]
        wait = await self._call(self._hit, [key], args)
        if wait is not None:
            return max(0.0, float(wait))
        wait = await self.fallback.hit(bucket, max(1, limit // self.instances), window_seconds, now)
        if not wait and len(self._owed_hits) < KNOWN_MAX:
            self._owed_hits.append((key, now, window_seconds))
        return wait

    async def add(self, bucket: str, amount: float, window_seconds: int, now: float) -> float:
        key = self._window_key(bucket, window_seconds, now)
        total = await self._call(self._add, [key], [amount, window_seconds])
        if total is not None:
            self._remember(key, float(total))
            return float(total)
        self._owe(key, amount, window_seconds)
        return await self.fallback.add(bucket, amount, window_seconds, now)

    async def join(
        self, group: str, member: str, limit: int, ttl_seconds: float, now: float
    ) -> bool:
        key = self.prefix + group
        args = [now, member, limit, now + ttl_seconds, int(ttl_seconds) + 1]
        joined = await self._call(self._join, [key], args)
        if joined is None:
            return await self.fallback.join(group, member, limit, ttl_seconds, now)
        return bool(joined)

    async def leave(self, group: str, member: str) -> None:
        if await self._call(self.link.client.zrem, [self.prefix + group, member]) is None:
            await self.fallback.leave(group, member)

    async def count(self, bucket: str, window_seconds: float, now: float) -> int:
        key, since = f"{self.prefix}{bucket}:recent", f"({now - window_seconds!r}"
        counted = await self._call(self.link.client.zcount, [key, since, "+inf"])
        if counted is None:
            return await self.fallback.count(bucket, window_seconds, now)
        return int(counted)

    async def total(self, bucket: str, window_seconds: int, now: float) -> float:
        key = self._window_key(bucket, window_seconds, now)
        used = await self._call(self._total, [key], [])
        if used is None:
            return await self.fallback.total(bucket, window_seconds, now)
        self._remember(key, float(used))
        return float(used)

    async def members(self, group: str, now: float) -> int:
        live = await self._call(self.link.client.zcount, [self.prefix + group, f"({now!r}", "+inf"])
        if live is None:
            return await self.fallback.members(group, now)
        return int(live)

    async def first_use(self, name: str, ttl_seconds: float) -> bool:
        ttl_ms = max(1, int(ttl_seconds * 1000))
        first = await self._call(self._set_once, [self.prefix + name], [ttl_ms])
        if first is None:
            first = await self.fallback.first_use(name, ttl_seconds)
            if first and len(self._owed_names) < KNOWN_MAX:
                self._owed_names[self.prefix + name] = ttl_seconds
        return bool(first)

    async def _set_once(self, keys: list[str], args: list[Any]) -> bool:
        return bool(await self.link.client.set(keys[0], b"1", nx=True, px=args[0]))

    def _remember(self, key: str, used: float) -> None:
        self._known.pop(key, None)  # re-inserted last: the oldest go first
        self._known[key] = used
        if len(self._known) > KNOWN_MAX:
            del self._known[next(iter(self._known))]

    def _owe(self, key: str, amount: float, window_seconds: int) -> None:
        owed = self._owed.get(key, (0.0, window_seconds))[0] + amount
        if key in self._owed or len(self._owed) < KNOWN_MAX:
            self._owed[key] = (owed, window_seconds)

    async def _call(self, method: Any, keys: list[str], args: list[Any] | None = None) -> Any:
        """The result, or None when Redis is away (the caller falls back)."""
        try:
            self.link.check()
            if self._owed or self._owed_hits or self._owed_names:
                await self._merge()
            if time.monotonic() - self._beat_at > BEAT_SECONDS:
                await self._heartbeat()
            if args is None:
                return await method(*keys)
            return await method(keys=keys, args=args)
        except DOWN as error:
            self._degraded(error)
            return None

    async def _merge(self) -> None:
        """What was counted here while Redis was away goes into the shared counters, once."""
        async with self._merging:
            owed, self._owed = self._owed, {}
            hits, self._owed_hits = self._owed_hits, []
            names, self._owed_names = self._owed_names, {}
            try:
                for key, (amount, seconds) in list(owed.items()):
                    self._remember(key, float(await self._add(keys=[key], args=[amount, seconds])))
                    del owed[key]
                while hits:
                    key, at, window = hits[-1]
                    member = f"{at!r}:{secrets.token_hex(6)}"
                    await self._hit(keys=[key], args=[repr(at), 2**31, window, member])
                    hits.pop()
                for name, keep in list(names.items()):
                    await self._set_once([name], [max(1, int(keep * 1000))])
                    del names[name]
            finally:  # what did not go in is owed still
                for key, (amount, seconds) in owed.items():
                    self._owe(key, amount, seconds)
                self._owed_hits += hits
                self._owed_names.update(names)
            self.fallback = InMemoryLimits()
            log.info("limits: counts made while redis was away merged into the shared ones")

    async def _heartbeat(self) -> None:
        now = time.time()
        args: list[float | str] = [now, now + ALIVE_SECONDS, self.instance, ALIVE_SECONDS + 1]
        self._beat_at = time.monotonic()
        self.instances = max(1, int(await self._beat(keys=[f"{self.prefix}instances"], args=args)))

    def _degraded(self, error: BaseException) -> None:
        if not isinstance(error, RedisUnavailable):
            self.link.mark_down(error)
        now = time.monotonic()
        if now - self._warned > 10:
            self._warned = now
            log.warning("limits: redis unavailable, counting in this process: %r", error)

    def health(self) -> dict[str, object]:
        return {"kind": "redis", **self.link.health()}
