"""Circuit openings in Redis: one key per provider, "opened at" with a TTL of the cool-down.

Two instances opening at once keep the later opening (one Lua script, atomic). The keys
expire by themselves, so an instance that dies never keeps a provider out past its cool-down.
"""

from __future__ import annotations

from collections.abc import Sequence

from adapters.redis_link import RedisLink

# KEYS[1] the provider's key; ARGV[1] opened at (wall seconds), ARGV[2] TTL in milliseconds.
_OPEN = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


class RedisBreakerStore:
    """BreakerStore port on the shared Redis; fails fast (RedisUnavailable) while it is away."""

    def __init__(self, link: RedisLink, *, prefix: str) -> None:
        self.link = link
        # One hash tag for every provider's key: the MGET in `opened` is one slot in a Cluster.
        self.prefix = link.tag(f"{prefix}:breaker") + ":"
        self._open = link.client.register_script(_OPEN)

    async def opened(self, providers: Sequence[str]) -> dict[str, float]:
        self.link.check()
        if not providers:
            return {}
        values = await self.link.client.mget([self.prefix + p for p in providers])
        return {p: float(v) for p, v in zip(providers, values, strict=True) if v is not None}

    async def open(self, provider: str, opened_at: float, seconds: float) -> None:
        self.link.check()
        ttl_ms = max(1, int(1000 * seconds))
        await self._open(keys=[self.prefix + provider], args=[repr(opened_at), ttl_ms])

    async def close(self, provider: str) -> None:
        self.link.check()
        await self.link.client.delete(self.prefix + provider)
