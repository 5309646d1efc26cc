"""The clients of one Redis deployment: one server, a primary watched by Sentinel, or a Cluster.

Sentinel and Cluster clients find the current primaries themselves: after a failover the next
connection goes to the promoted replica, with no restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

Address = tuple[str, int]


def no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


class RedisClients:
    """Builds clients for one deployment; `url` gives the server, or with sentinels or cluster
    nodes only the password, user, database and TLS (its host is not used)."""

    def __init__(
        self,
        url: str | None,
        *,
        timeout: float,
        sentinels: Sequence[Address] = (),
        sentinel_master: str = "mymaster",
        sentinel_password: str | None = None,
        cluster_nodes: Sequence[Address] = (),
    ) -> None:
        if url is None and not sentinels and not cluster_nodes:
            raise ValueError("a Redis URL, sentinels or cluster nodes are needed")
        self.url = url
        self.cluster_nodes = tuple(cluster_nodes)
        self.sentinel_master = sentinel_master
        self.sentinel: Sentinel | None = None
        if sentinels:
            asked = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
            self.sentinel = Sentinel(  # type: ignore[no-untyped-call]
                list(sentinels),
                sentinel_kwargs={**asked, "password": sentinel_password, "retry": no_retry()},
            )

    def build(self, *, socket_timeout: float, connect_timeout: float, **options: Any) -> Any:
        """A client (redis.asyncio Redis or RedisCluster) with these connection options."""
        options.update(socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout)
        if self.sentinel is not None:
            return self.sentinel.master_for(self.sentinel_master, **self._credentials(), **options)
        if self.cluster_nodes:
            nodes = [ClusterNode(host, port) for host, port in self.cluster_nodes]
            return RedisCluster(startup_nodes=nodes, **self._credentials(), **options)
        assert self.url is not None
        return aioredis.Redis.from_url(self.url, **options)

    def _credentials(self) -> dict[str, Any]:
        if self.url is None:
            return {}
        parsed = parse_url(self.url)
        kept = {k: v for k, v in parsed.items() if k in ("username", "password", "db")}
        if parsed.get("connection_class") is SSLConnection:
            kept["ssl"] = True
        if self.cluster_nodes:
            kept.pop("db", None)  # a cluster has database 0 only
        return kept

    async def close(self) -> None:
        if self.sentinel is not None:
            for client in self.sentinel.sentinels:
                await client.aclose()
