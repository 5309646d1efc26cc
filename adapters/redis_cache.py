"""Audio cache in Redis: binary values with a TTL, shared by every service instance."""

from __future__ import annotations

from typing import cast

from adapters.redis_link import DOWN, RedisLink


class RedisAudioCache:
    """Audio cache port on Redis GET/SET EX; raises at once while Redis is away."""

    def __init__(self, link: RedisLink, *, ttl_seconds: float, prefix: str) -> None:
        self.link = link
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.prefix = f"{prefix}:"

    async def get(self, key: str) -> bytes | None:
        self.link.check()
        try:
            value = cast("bytes | None", await self.link.client.get(self.prefix + key))
        except DOWN as error:
            self.link.mark_down(error)
            raise
        return value

    async def put(self, key: str, value: bytes) -> None:
        self.link.check()
        try:
            await self.link.client.set(self.prefix + key, value, px=self.ttl_ms)
        except DOWN as error:
            self.link.mark_down(error)
            raise

    def health(self) -> dict[str, object]:
        return {"kind": "redis", **self.link.health()}
