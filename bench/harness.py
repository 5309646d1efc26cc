"""Bench plumbing: a service process on loopback, a keep-alive HTTP load generator, tables."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    def __init__(self, process: subprocess.Popen[bytes], url: str, ready_seconds: float) -> None:
        self.process = process
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.ready_seconds = ready_seconds

    def rss_mb(self) -> float:
        return float(psutil.Process(self.process.pid).memory_info().rss) / 2**20


@contextmanager
def running_service(**env: str) -> Iterator[Service]:
    """Start `voicepipe serve` as a new user would and wait until /health answers."""
    with running_service_at(ROOT, **env) as service:
        yield service


@contextmanager
def running_service_at(root: Path, **env: str) -> Iterator[Service]:
    """`running_service` of another checkout's code (a worktree of an older commit), for
    figures side by side."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {**os.environ, "LOG_LEVEL": "warning", "LOG_FORMAT": "json", **env}
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli", "serve", "--port", str(port)],
        cwd=root,
        env=environment,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError("service exited during start-up")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield Service(process, url, time.monotonic() - started)
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _hammer(port: int, path: str, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    done = 0
    try:
        while time.monotonic() < deadline:
            writer.write(request)
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            done += 1
    finally:
        counts.append(done)
        writer.close()


def requests_per_second(port: int, path: str, seconds: float, connections: int = 8) -> float:
    """GET `path` over keep-alive connections as fast as the server answers.

    Uses wrk (Debian package `wrk`) when installed: a C client takes less of the two cores
    from the server than the Python fallback does.
    """
    if shutil.which("wrk"):
        return _wrk(port, path, seconds, connections)

    async def run() -> float:
        counts: list[int] = []
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(_hammer(port, path, deadline, counts) for _ in range(connections)))
        return sum(counts) / seconds

    return asyncio.run(run())


def _wrk(port: int, path: str, seconds: float, connections: int) -> float:
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in result.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(f"unexpected wrk output: {result.stdout}")


def load_generator() -> str:
    return "wrk" if shutil.which("wrk") else "python asyncio client"


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def table(rows: list[tuple[str, str, str, str]]) -> str:
    header = ("figure", "measured", "target", "ok")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [
        " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *rows]
    ]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(f"| {line} |" for line in lines)


def p95(values: list[float]) -> float:
    """The value 95% of the way up the sorted values (rounded index)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
