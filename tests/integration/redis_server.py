"""Real Redis for the tests: REDIS_URL if it answers, else a redis-server of our own."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import redis

from tests.integration.conftest import free_port


def url_from_env() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


class RedisProcess:
    """A redis-server we own: can be stopped (saving to disk) and started again on one port."""

    def __init__(self, extra: Sequence[str] = (), config: str | None = None) -> None:
        """`extra` arguments go after ours; `config` is written to a file given first (a
        sentinel's, which Sentinel rewrites)."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = Path(tempfile.mkdtemp(prefix="voicepipe-redis-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.extra = list(extra)
        self.config: list[str] = []
        if config is not None:
            (self.dir / "redis.conf").write_text(config)
            self.config = [str(self.dir / "redis.conf")]

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                *self.config,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "no",
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not answers(self.url):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop as an operator would, keeping the data (SHUTDOWN SAVE writes dump.rdb)."""
        if self.process is None:
            return
        with contextlib.suppress(redis.ConnectionError):  # it hangs up as it exits
            redis.Redis.from_url(self.url).shutdown(save=True)
        self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)
