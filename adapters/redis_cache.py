"""Audio cache in Redis: binary values with a TTL, shared by every service instance."""

from __future__ import annotations

from typing import cast

from adapters.redis_link import RedisLink


class RedisAudioCache:
    """Audio cache port on Redis GET/SET EX; raises at once while Redis is away."""

    def __init__(self, link: RedisLink, *, ttl_seconds: float, prefix: str) -> None:
        self.link = link
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.prefix = f"{prefix}:"

    async def get(self, key: str) -> bytes | None:
        return cast(
            "bytes | None", await self.link.run(lambda: self.link.client.get(self.prefix + key))
        )

    async def put(self, key: str, value: bytes) -> None:
        await self.link.run(lambda: self.link.client.set(self.prefix + key, value, px=self.ttl_ms))

    def health(self) -> dict[str, object]:
        return {"kind": "redis", **self.link.health()}
