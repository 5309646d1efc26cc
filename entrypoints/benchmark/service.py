"""The service a bench measures: one started here on a free loopback port, or one at --url."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

import entrypoints

START_SECONDS = 180.0  # first start of a fresh install may load models from a cold disk


@dataclass(frozen=True)
class Target:
    """Where the measured service answers, and the headers that admit the bench."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    own: bool = False

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/ws/voice"


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def own_service() -> Iterator[Target]:
    """`voicepipe serve` on a free loopback port, on this environment's settings.

    API keys are left out (the bench measures capacity, not admission) and logs are quiet;
    every other setting (models, threads, Redis, queues) is the user's own.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    package_root = str(Path(entrypoints.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "API_KEYS": "",
        "LOG_LEVEL": "warning",
        "LOG_FORMAT": "json",
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-m", "entrypoints.cli", "serve", "--host", "127.0.0.1"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([*command, "--port", str(port)], env=env, stderr=log)
        try:
            _wait_until_ready(process, url, log)
            yield Target(url, own=True)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, log: IO[bytes]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"the service exited during start-up:\n{tail}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the service did not answer /health within {START_SECONDS:.0f} s")
