"""Issue 18: Redis operations and bytes per request, for the scale model in docs/scaling.md.

One `voicepipe serve` on a private redis-server; INFO commandstats and byte counters are read
around N requests of each kind (cached TTS, uncached TTS, STT).

Run: flock /tmp/bench.lock .venv/bin/python -m bench.redis_cost [--requests 100]
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.harness import free_port, table
from bench.scale_out import Instance


def counters(raw: Any) -> tuple[dict[str, int], int, int]:
    stats = raw.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
    net = raw.info("stats")
    return calls, int(net["total_net_input_bytes"]), int(net["total_net_output_bytes"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100)
    n = parser.parse_args().requests
    port = free_port()
    workdir = tempfile.mkdtemp()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "REDIS_URL": url,
        "LOG_LEVEL": "warning",
        "STT_TURN_DETECTION": "silence",
        "OTEL_SDK_DISABLED": "true",
    }
    instance = Instance("voicepipe", free_port(), env, Path(workdir))
    rows = []
    try:
        time.sleep(0.5)
        raw: Any = redis.Redis.from_url(url)
        instance.start()
        instance.wait_ready()
        with httpx.Client(base_url=instance.url, timeout=60) as http:
            http.post("/api/tts", json={"text": "Cached words."})
            wav = base64.b64decode(
                http.post("/api/tts", json={"text": "Call me back.", "format": "wav"}).json()[
                    "audio_base64"
                ]
            )
            time.sleep(1.0)
            kinds: dict[str, Callable[[int], httpx.Response]] = {
                "cached TTS": lambda i: http.post("/api/tts", json={"text": "Cached words."}),
                "uncached TTS": lambda i: http.post("/api/tts", json={"text": f"New words {i}."}),
                "STT": lambda i: http.post("/api/stt", files={"file": ("a.wav", wav)}),
            }
            for kind, send in kinds.items():
                memory = int(raw.info("memory")["used_memory"])
                before, bytes_in, bytes_out = counters(raw)
                for i in range(n):
                    assert send(i).status_code == 200
                time.sleep(1.5)  # the projector's reads after the last request
                after, bytes_in2, bytes_out2 = counters(raw)
                ops = {k: (after[k] - before.get(k, 0)) / n for k in after}
                ops = {k: round(v, 2) for k, v in sorted(ops.items()) if v > 0}
                grown = (int(raw.info("memory")["used_memory"]) - memory) / n
                rows.append(
                    (
                        kind,
                        f"{sum(ops.values()):.1f} ops: {ops}",
                        f"in {(bytes_in2 - bytes_in) / n / 1024:.1f} kB, "
                        f"out {(bytes_out2 - bytes_out) / n / 1024:.1f} kB",
                        f"memory +{grown / 1024:.1f} kB",
                    )
                )
            entries = raw.xlen("voicepipe:events")
            stream_bytes = raw.memory_usage("voicepipe:events")
    finally:
        instance.stop()
        server.terminate()
        server.wait()
    print(table(rows))
    print(f"stream: {entries} events, {stream_bytes} bytes ({stream_bytes / entries:.0f} B/event)")


if __name__ == "__main__":
    main()
