"""Issue 3 figures: cached TTS throughput on Redis, WebSocket latency and memory, event log cost.

Run: .venv/bin/python -m bench.shared_state   (needs wrk and a Redis at $REDIS_URL or :6379)
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping

import httpx
import redis
import websockets

from bench.harness import running_service, table

TEXT = "The quick brown fox jumps over the lazy dog."  # about 2 s of speech
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CLIENTS = 50


def wrk_post(url: str, body: Mapping[str, object], seconds: int = 10) -> tuple[float, float]:
    """Requests/s and p99 (ms) of POSTing `body` from CLIENTS keep-alive connections."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(json.dumps(body))}\n"
        )
    result = subprocess.run(
        ["wrk", "-t2", f"-c{CLIENTS}", f"-d{seconds}s", "--latency", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    )
    rps = p99 = 0.0
    for line in result.stdout.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            rps = float(parts[1])
        elif parts and parts[0] == "99%":
            p99 = _ms(parts[1])
        elif "Non-2xx" in line:
            raise RuntimeError(line)
    return rps, p99


def _ms(value: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    raise ValueError(value)


async def websocket_latencies(ws_url: str, rounds: int = 20) -> list[float]:
    """CLIENTS connections each send one cached TTS message at the same moment, `rounds` times."""
    sockets = [await websockets.connect(ws_url, max_size=None) for _ in range(CLIENTS)]
    message = json.dumps({"type": "text", "text": TEXT})
    latencies: list[float] = []

    async def one(ws: websockets.ClientConnection) -> None:
        start = time.perf_counter()
        await ws.send(message)
        reply = json.loads(await ws.recv())
        assert reply["type"] == "audio" and reply["cached"], reply
        latencies.append(1000 * (time.perf_counter() - start))

    for _ in range(rounds):
        await asyncio.gather(*(one(ws) for ws in sockets))
    for ws in sockets:
        await ws.close()
    return latencies


async def idle_connection_bytes(ws_url: str, rss: Callable[[], float], count: int = 1000) -> float:
    before = rss()
    sockets = []
    for _ in range(count):
        sockets.append(await websockets.connect(ws_url, ping_interval=None))
    await asyncio.sleep(2)
    after = rss()
    for ws in sockets:
        await ws.close()
    return (after - before) * 2**20 / count


def main() -> None:
    rows: list[tuple[str, str, str, str]] = []
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    env = {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix}
    results: dict[str, float] = {}
    for name, extra in (("redis log", {}), ("memory log", {"EVENT_LOG": "memory"})):
        with running_service(**env, **extra) as service:
            body = {"text": TEXT}
            clip = httpx.post(f"{service.url}/api/tts", json=body, timeout=60).json()
            wrk_post(f"{service.url}/api/tts", body, seconds=3)  # warm up
            rps, p99 = wrk_post(f"{service.url}/api/tts", body)
            results[name] = rps
            if name == "redis log":
                rows.append(
                    (
                        f"cached TTS REST, {CLIENTS} clients, {clip['duration']} s clip",
                        f"{rps:.0f} req/s, p99 {p99:.1f} ms",
                        ">= 1400, p99 <= 50",
                        str(rps >= 1400 and p99 <= 50),
                    )
                )
                latencies = sorted(
                    asyncio.run(
                        websocket_latencies(service.url.replace("http", "ws") + "/ws/voice")
                    )
                )
                p99_ws = latencies[int(0.99 * len(latencies)) - 1]
                rows.append(
                    (
                        f"{CLIENTS} concurrent cached TTS over {CLIENTS} WebSockets",
                        f"p50 {statistics.median(latencies):.1f} ms, p99 {p99_ws:.1f} ms",
                        "p99 <= 150",
                        str(p99_ws <= 150),
                    )
                )
                per = asyncio.run(
                    idle_connection_bytes(
                        service.url.replace("http", "ws") + "/ws/voice", service.rss_mb
                    )
                )
                rows.append(
                    (
                        "1,000 idle WebSockets: resident memory each",
                        f"{per / 1000:.1f} kB",
                        "<= 60 kB",
                        str(per <= 60_000),
                    )
                )
    ratio = results["redis log"] / results["memory log"]
    rows.append(
        (
            "req/s with Redis event log / in-memory log",
            f"{ratio:.3f} ({results['redis log']:.0f} / {results['memory log']:.0f})",
            ">= 0.95",
            str(ratio >= 0.95),
        )
    )
    redis.Redis.from_url(REDIS_URL).delete(f"{prefix}:events")
    print(table(rows))


if __name__ == "__main__":
    main()
