"""Real Redis deployments for the tests: a primary with a replica watched by three sentinels,
and a three-primary Cluster; each on free loopback ports in temp dirs, torn down after."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis

from tests.integration.conftest import free_port
from tests.integration.redis_server import RedisProcess

MASTER = "mymaster"


def wait_until(check: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not so after {timeout:.0f} s")
        time.sleep(0.1)


class SentinelSet:
    """A primary, one replica and three sentinels (quorum 2) failing over within seconds."""

    def __init__(self) -> None:
        self.primary = RedisProcess()
        self.replica = RedisProcess()
        self.sentinels: list[RedisProcess] = []

    def start(self) -> None:
        self.primary.start()
        self.replica.extra = ["--replicaof", "127.0.0.1", str(self.primary.port)]
        self.replica.start()
        config = (
            f"sentinel monitor {MASTER} 127.0.0.1 {self.primary.port} 2\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 3000\n"
        )
        for _ in range(3):
            sentinel = RedisProcess(extra=["--sentinel"], config=config)
            sentinel.start()
            self.sentinels.append(sentinel)
        replica = redis.Redis.from_url(self.replica.url)
        wait_until(
            lambda: replica.info("replication")["master_link_status"] == "up", "replica in sync"
        )
        for sentinel in self.sentinels:
            watcher = redis.Redis.from_url(sentinel.url)
            wait_until(
                lambda w=watcher: (
                    len(w.sentinel_slaves(MASTER)) == 1  # type: ignore[misc]
                    and len(w.sentinel_sentinels(MASTER)) == 2
                ),
                "every sentinel knows the replica and the other sentinels",
            )

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", sentinel.port) for sentinel in self.sentinels]

    def primary_port(self) -> int:
        """The primary's port as the sentinels see it now."""
        watcher: Any = redis.Redis.from_url(self.sentinels[0].url)
        _, port = watcher.sentinel_get_master_addr_by_name(MASTER)
        return int(port)

    def kill_primary(self) -> None:
        """SIGKILL: no goodbye to clients or replicas, as when its machine dies."""
        self.primary.kill()

    def stop(self) -> None:
        for process in (*self.sentinels, self.replica, self.primary):
            process.kill()


class Cluster:
    """Three primaries, no replicas, every slot covered."""

    def __init__(self) -> None:
        # The bus port defaults to port + 10000, which may be taken: give each its own.
        self.nodes = [
            RedisProcess(
                extra=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-port",
                    str(free_port()),
                ]
            )
            for _ in range(3)
        ]

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed (apt-get install redis-tools)")
        hosts = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [cli, "--cluster", "create", *hosts, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for node in self.nodes:
            client = redis.Redis.from_url(node.url)
            wait_until(
                lambda c=client: c.cluster("info")["cluster_state"] == "ok",  # type: ignore[misc]
                "cluster state ok on every node",
            )

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", node.port) for node in self.nodes]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in self.addresses)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


@contextmanager
def running(deployment: SentinelSet | Cluster) -> Iterator[None]:
    try:
        deployment.start()
        yield
    finally:
        deployment.stop()
