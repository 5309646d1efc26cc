"""One Redis connection pool shared by the Redis adapters, and whether Redis is reachable.

The pool is one server's, a Sentinel-managed primary's (REDIS_SENTINELS) or a Cluster's.

While Redis is away, adapters fail fast instead of waiting on timeouts, and one background
task reconnects with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.exceptions import RedisClusterException, RedisError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from adapters.redis_clients import Address, RedisClients, no_retry

log = logging.getLogger(__name__)
T = TypeVar("T")

# A cluster client that reaches none of its nodes raises RedisClusterException, no RedisError.
DOWN = (RedisError, OSError, RedisClusterException)


class RedisUnavailable(ConnectionError):
    """Redis is known to be down; raised at once so callers can degrade."""


class RedisLink:
    """A shared client plus the availability state the adapters and /health read."""

    def __init__(
        self,
        url: str | None,
        *,
        timeout: float = 0.5,
        max_backoff: float = 5.0,
        sentinels: Sequence[Address] = (),
        sentinel_master: str = "mymaster",
        sentinel_password: str | None = None,
        cluster_nodes: Sequence[Address] = (),
    ) -> None:
        self.url = url
        self.clients = RedisClients(
            url,
            timeout=timeout,
            sentinels=sentinels,
            sentinel_master=sentinel_master,
            sentinel_password=sentinel_password,
            cluster_nodes=cluster_nodes,
        )
        self.cluster = bool(cluster_nodes)
        self.client: Any = self.clients.build(
            socket_timeout=timeout,
            connect_timeout=timeout,
            health_check_interval=0,
            decode_responses=False,
            # No retries inside the client: a request must fail fast and degrade; this
            # link reconnects in the background instead.
            retry=no_retry(),
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
        except DOWN as error:
            self.mark_down(error)
            return
        self._mark_up()

    def tag(self, name: str) -> str:
        """`name` as a Cluster hash tag: keys starting with it share its slot (plain elsewhere)."""
        return f"{{{name}}}" if self.cluster else name

    def blocking_client(self) -> Any:
        """A client of its own for blocking reads (XREAD BLOCK holds its connection)."""
        return self.clients.build(socket_timeout=30, connect_timeout=1)

    def check(self) -> None:
        if not self.available:
            raise RedisUnavailable(self.reason)

    async def run(self, command: Callable[[], Awaitable[T]]) -> T:
        """Run one command: at once RedisUnavailable while Redis is known to be away; an error
        that says it is away marks it so (and starts the reconnect), then is raised."""
        self.check()
        try:
            return await command()
        except DOWN as error:
            self.mark_down(error)
            raise

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
        # With Sentinel, each new connection asks the sentinels where the primary is; a
        # READONLY answer (also from a script) of a demoted primary closes its connection and
        # is raised as a ConnectionError (redis-py's SentinelManagedConnection): down, then here.
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(DOWN),
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
        await self.clients.close()
