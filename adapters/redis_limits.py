"""Limit counters in Redis, shared by every instance; this process's counters while it is away.

Each check is one atomic Lua call, so two instances never both take the last unit.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from redis.exceptions import RedisError

from adapters.memory_limits import InMemoryLimits
from adapters.redis_link import RedisLink, RedisUnavailable

log = logging.getLogger(__name__)

_TAKE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return 0 end
redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
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
        self._take = link.client.register_script(_TAKE)
        self._hit = link.client.register_script(_HIT)
        self._add = link.client.register_script(_ADD)
        self._join = link.client.register_script(_JOIN)
        self._total = link.client.register_script(_TOTAL)
        self._warned = 0.0

    def _window_key(self, bucket: str, window_seconds: int, now: float) -> str:
        return f"{self.prefix}{bucket}:{int(now // window_seconds)}"

    async def take(
        self, bucket: str, amount: float, limit: float, window_seconds: int, now: float
    ) -> float:
        key = self._window_key(bucket, window_seconds, now)
        taken = await self._call(self._take, [key], [amount, limit, window_seconds])
        if taken is None:
            return await self.fallback.take(bucket, amount, limit, window_seconds, now)
        return 0.0 if taken else window_seconds - now % window_seconds

    async def hit(self, bucket: str, limit: int, window_seconds: float, now: float) -> float:
        args = [repr(now), limit, window_seconds, f"{now!r}:{secrets.token_hex(6)}"]
        wait = await self._call(self._hit, [f"{self.prefix}{bucket}:recent"], args)
        if wait is None:
            return await self.fallback.hit(bucket, limit, window_seconds, now)
        return max(0.0, float(wait))

    async def add(self, bucket: str, amount: float, window_seconds: int, now: float) -> float:
        key = self._window_key(bucket, window_seconds, now)
        total = await self._call(self._add, [key], [amount, window_seconds])
        if total is None:
            return await self.fallback.add(bucket, amount, window_seconds, now)
        return float(total)

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
        return float(used)

    async def members(self, group: str, now: float) -> int:
        live = await self._call(self.link.client.zcount, [self.prefix + group, f"({now!r}", "+inf"])
        if live is None:
            return await self.fallback.members(group, now)
        return int(live)

    async def first_use(self, name: str, ttl_seconds: float) -> bool:
        set_once = self.link.client.set
        try:
            self.link.check()
            return bool(
                await set_once(self.prefix + name, b"1", nx=True, px=int(ttl_seconds * 1000))
            )
        except (RedisError, OSError) as error:
            self._degraded(error)
            return await self.fallback.first_use(name, ttl_seconds)

    async def _call(self, method: Any, keys: list[str], args: list[Any] | None = None) -> Any:
        """The result, or None when Redis is away (the caller falls back)."""
        try:
            self.link.check()
            if args is None:
                return await method(*keys)
            return await method(keys=keys, args=args)
        except (RedisError, OSError) as error:
            self._degraded(error)
            return None

    def _degraded(self, error: BaseException) -> None:
        if not isinstance(error, RedisUnavailable):
            self.link.mark_down(error)
        now = time.monotonic()
        if now - self._warned > 10:
            self._warned = now
            log.warning("limits: redis unavailable, counting in this process: %r", error)

    def health(self) -> dict[str, object]:
        return {"kind": "redis", **self.link.health()}
