"""One Redis connection pool shared by the Redis adapters, and whether Redis is reachable.

While Redis is away, adapters fail fast instead of waiting on timeouts, and one background
task reconnects with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

log = logging.getLogger(__name__)


class RedisUnavailable(ConnectionError):
    """Redis is known to be down; raised at once so callers can degrade."""


class RedisLink:
    """A shared client plus the availability state the adapters and /health read."""

    def __init__(self, url: str, *, timeout: float = 0.5, max_backoff: float = 5.0) -> None:
        self.url = url
        self.client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=0,
            decode_responses=False,
            # No retries inside the client: a request must fail fast and degrade; this
            # link reconnects in the background instead.
            retry=Retry(NoBackoff(), 0),
            # Cached audio is ~100 kB: read it in one or two socket reads, not many.
            socket_read_size=256 * 1024,
        )
        self.max_backoff = max_backoff
        self.available = False
        self.reason = "not connected yet"
        self.down_since: float | None = time.monotonic()
        self._reconnecting: asyncio.Task[None] | None = None
        self._up = asyncio.Event()

    async def connect(self) -> None:
        """Try once; if Redis is not there, keep trying in the background."""
        try:
            await self.client.ping()
        except (RedisError, OSError) as error:
            self.mark_down(error)
            return
        self._mark_up()

    def check(self) -> None:
        if not self.available:
            raise RedisUnavailable(self.reason)

    def mark_down(self, error: BaseException) -> None:
        if self.available or self.down_since is None:
            log.warning("redis unavailable: %s", error)
            self.down_since = time.monotonic()
        self.available = False
        self._up.clear()
        self.reason = f"redis unreachable: {type(error).__name__}"
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def wait_up(self) -> None:
        await self._up.wait()

    def _mark_up(self) -> None:
        if not self.available:
            log.info("redis available")
        self._up.set()
        self.available = True
        self.reason = ""
        self.down_since = None

    async def _reconnect(self) -> None:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type((RedisError, OSError)),
            wait=wait_exponential_jitter(multiplier=0.05, max=self.max_backoff, jitter=0.05),
        )
        async for attempt in retrying:
            with attempt:
                await self.client.ping()
        self._mark_up()

    def health(self) -> dict[str, object]:
        if self.available:
            return {"status": "ok"}
        down = 0.0 if self.down_since is None else time.monotonic() - self.down_since
        return {"status": "degraded", "reason": self.reason, "down_seconds": round(down, 1)}

    async def close(self) -> None:
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        await self.client.aclose()
