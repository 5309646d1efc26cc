"""Issue 7 figure: cost of tracing and metrics on cached TTS at 50 concurrent clients.

Run: .venv/bin/python -m bench.observability   (needs wrk)

Three set-ups of the same `voicepipe serve`, interleaved over three rounds:
- off:     OTEL_SDK_DISABLED=true (no metrics, no spans)
- default: Prometheus metrics at /metrics, trace ids in logs, spans not recorded
- full:    every span recorded and exported over OTLP/HTTP with the metrics, to a local sink
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from bench.harness import median, running_service, table
from bench.shared_state import CLIENTS, TEXT, wrk_post

ROUNDS = 3
SECONDS = 10


class Sink:
    """Accepts OTLP/HTTP posts and counts them; stands in for a collector on another host."""

    def __init__(self) -> None:
        self.posts = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                sink.posts += 1
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def sink() -> Iterator[Sink]:
    running = Sink()
    thread = threading.Thread(target=running.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.server.shutdown()


def measure(env: dict[str, str]) -> tuple[float, float]:
    with running_service(**env) as service:
        url = f"{service.url}/api/tts"
        assert httpx.post(url, json={"text": TEXT}, timeout=60).is_success  # fill the cache
        wrk_post(url, {"text": TEXT}, seconds=2)  # warm-up
        return wrk_post(url, {"text": TEXT}, seconds=SECONDS)


def main() -> None:
    results: dict[str, list[tuple[float, float]]] = {"off": [], "default": [], "full": []}
    with sink() as collector:
        setups = {
            "off": {"OTEL_SDK_DISABLED": "true"},
            "default": {},
            "full": {
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
                "OTEL_METRIC_EXPORT_INTERVAL": "5000",
            },
        }
        for round_ in range(ROUNDS):
            for name, env in setups.items():
                rps, p99 = measure(env)
                results[name].append((rps, p99))
                print(f"round {round_ + 1} {name}: {rps:.0f} req/s, p99 {p99:.1f} ms", flush=True)
        print(f"collector received {collector.posts} OTLP posts")
    base = median([r for r, _ in results["off"]])
    rows = [("set-up", "req/s (median of 3)", "p99 ms (median)", "÷ off")]
    for name, runs in results.items():
        rps = median([r for r, _ in runs])
        rows.append(
            (name, f"{rps:.0f}", f"{median([p for _, p in runs]):.1f}", f"{rps / base:.3f}")
        )
    print(f"cached TTS, {CLIENTS} clients, wrk {SECONDS} s per run")
    print(table(rows))


if __name__ == "__main__":
    main()
