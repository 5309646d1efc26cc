"""The service on a real Redis: shared cache and stats, and Redis going away under load."""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from domain.events import decode_event
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings
from tests.integration.conftest import RunningServer, free_port
from tests.integration.redis_server import RedisProcess

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    yield server
    server.kill()


def stream_events(url: str, prefix: str) -> list[object]:
    raw: Any = redis.Redis.from_url(url)
    return [decode_event(fields[b"e"]) for _, fields in raw.xrange(f"{prefix}:events")]


def wait_for(check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def redis_server_for(container_url: str, **settings: object) -> RunningServer:
    base = Settings(redis_url=container_url, redis_prefix=f"t{uuid.uuid4().hex[:8]}")
    import msgspec

    return RunningServer(bootstrap(msgspec.structs.replace(base, **settings)))


async def hammer(url: str, total: int, clients: int, progress: list[int]) -> list[int]:
    """Send `total` TTS requests from `clients` concurrent clients; return every status."""
    statuses: list[int] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            while not queue.empty():
                i = queue.get_nowait()
                response = await http.post("/api/tts", json={"text": f"Number {i % 7}."})
                statuses.append(response.status_code)
                progress[0] += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return statuses


def test_redis_restart_under_load_loses_no_request_and_no_event(
    own_redis: RedisProcess,
) -> None:
    with redis_server_for(own_redis.url) as server, httpx.Client(base_url=server.url) as http:
        prefix = server.container.settings.redis_prefix
        wait_for(lambda: http.get("/health").json()["status"] == "ok")
        progress = [0]
        seen_degraded: list[dict[str, object]] = []

        def outage() -> None:
            wait_for(lambda: progress[0] >= 100)
            own_redis.stop()
            wait_for(lambda: http.get("/health").json()["status"] == "degraded", 5)
            seen_degraded.append(http.get("/health").json())
            time.sleep(1.0)
            own_redis.start()

        import threading

        operator = threading.Thread(target=outage)
        operator.start()
        statuses = asyncio.run(hammer(server.url, 500, 20, progress))
        operator.join()

        assert statuses == [200] * 500  # every request answered, none failed
        degraded = seen_degraded[0]
        assert "redis unreachable" in " ".join(degraded["warnings"])  # type: ignore[arg-type]
        wait_for(lambda: http.get("/health").json()["status"] == "ok")
        wait_for(lambda: http.get("/health").json()["components"]["event_log"]["buffered"] == 0)
        # The stats lease may have lapsed in the outage: /stats answers the last snapshot,
        # marked stale, until this instance leads again (its next try, within a second).
        wait_for(lambda: not http.get("/stats").json()["event_log"]["stale"])
        stats = http.get("/stats").json()
        assert stats["event_log"]["dropped"] == 0
        assert stats["requests"]["tts"]["completed"] == 500

    events = stream_events(own_redis.url, prefix)
    by_request = collections.defaultdict(list)
    for event in events:
        by_request[event.pipeline_id].append(type(event).__name__)  # type: ignore[attr-defined]
    assert len(by_request) == 500
    for names in by_request.values():
        assert names[0] == "RequestReceived" and names[-1] == "RequestCompleted"
        assert names.count("RequestReceived") == 1  # no duplicates after the retry


def test_redis_down_at_start_then_back(own_redis: RedisProcess) -> None:
    own_redis.stop()
    with redis_server_for(own_redis.url) as server, httpx.Client(base_url=server.url) as http:
        health = http.get("/health").json()
        assert health["status"] == "degraded"
        assert health["components"]["cache"]["status"] == "degraded"
        spoken = http.post("/api/tts", json={"text": "Redis is not there yet."})
        assert spoken.status_code == 200 and spoken.json()["cached"] is False
        assert http.get("/stats").json()["event_log"]["stale"] is True
        own_redis.start()
        wait_for(lambda: http.get("/health").json()["status"] == "ok")
        wait_for(lambda: http.get("/stats").json()["requests"]["tts"]["completed"] == 1)
        again = http.post("/api/tts", json={"text": "Redis is not there yet."})
        assert again.json()["cached"] is False  # the first answer could not be cached
        third = http.post("/api/tts", json={"text": "Redis is not there yet."})
        assert third.json()["cached"] is True


def test_events_past_the_buffer_bound_are_counted(own_redis: RedisProcess) -> None:
    with (
        redis_server_for(own_redis.url, event_buffer_max=20) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        wait_for(lambda: http.get("/health").json()["status"] == "ok")
        own_redis.stop()
        wait_for(lambda: http.get("/health").json()["status"] == "degraded", 5)
        for _ in range(10):  # about 7 events each with the cache away
            assert http.post("/api/tts", json={"text": "Buffer."}).status_code == 200
        log_health = http.get("/health").json()["components"]["event_log"]
        assert log_health["buffered"] == 20
        assert log_health["dropped"] > 0
        assert http.get("/stats").json()["event_log"]["dropped"] == log_health["dropped"]


class ServiceProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "entrypoints.cli", "serve", "--port", str(self.port)],
            cwd=ROOT,
            env={**os.environ, "LOG_LEVEL": "warning", **env},
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self) -> None:
        def ready() -> bool:
            assert self.process.poll() is None, "service exited"
            try:
                return httpx.get(f"{self.url}/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, 60)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def totals(url: str) -> tuple[object, ...]:
    stats = httpx.get(f"{url}/stats").json()
    return (stats["events"], stats["requests"], stats["cache"], stats["errors"])


def test_two_instances_share_cache_and_stats(redis_url: str) -> None:
    env = {"REDIS_URL": redis_url, "REDIS_PREFIX": f"two-{uuid.uuid4().hex[:8]}"}
    a, b = ServiceProcess(env), ServiceProcess(env)
    try:
        a.wait_ready()
        b.wait_ready()
        text = {"text": "Said on A, heard from the cache on B."}
        first = httpx.post(f"{a.url}/api/tts", json=text, timeout=30).json()
        second = httpx.post(f"{b.url}/api/tts", json=text, timeout=30).json()
        assert first["cached"] is False and second["cached"] is True
        assert first["audio_base64"] == second["audio_base64"]
        httpx.post(f"{b.url}/api/tts", json={"text": ""})
        wait_for(lambda: totals(a.url) == totals(b.url))
        stats = httpx.get(f"{a.url}/stats").json()
        assert stats["requests"]["tts"] == {"received": 3, "completed": 2, "failed": 1}
        assert stats["cache"]["hits"] == 1
        before = totals(a.url)
        a.stop()
        # A restarted instance rebuilds the same stats from the stream alone.
        c = ServiceProcess(env)
        try:
            c.wait_ready()
            wait_for(lambda: totals(c.url) == before)
        finally:
            c.stop()
    finally:
        for service in (a, b):
            if service.process.poll() is None:
                service.stop()
        redis.Redis.from_url(redis_url).delete(f"{env['REDIS_PREFIX']}:events")
