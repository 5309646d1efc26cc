"""Issue 7 figure: cost of tracing and metrics on cached TTS at 50 concurrent clients.

Run: .venv/bin/python -m bench.observability   (needs wrk)

Three set-ups of the same `voicepipe serve`, interleaved over three rounds:
- off:     OTEL_SDK_DISABLED=true (no metrics, no spans)
- default: Prometheus metrics at /metrics, trace ids in logs, spans not recorded
- sampled: OTLP/HTTP export of traces and metrics to a local sink, 10% of traces sampled
           (OTEL_TRACES_SAMPLER=parentbased_traceidratio, ARG=0.1), as production runs it
- full:    every span recorded and exported over OTLP/HTTP with the metrics
Besides req/s (noisy on a shared 2-core VM), the service's own CPU time per request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psutil

from bench.harness import median, running_service
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


def measure(env: dict[str, str]) -> tuple[float, float, float]:
    """Requests/s, p99 ms, and service CPU µs per request."""
    with running_service(**env) as service:
        url = f"{service.url}/api/tts"
        assert httpx.post(url, json={"text": TEXT}, timeout=60).is_success  # fill the cache
        wrk_post(url, {"text": TEXT}, seconds=2)  # warm-up
        process = psutil.Process(service.process.pid)
        before = sum(process.cpu_times()[:2])
        rps, p99 = wrk_post(url, {"text": TEXT}, seconds=SECONDS)
        cpu = sum(process.cpu_times()[:2]) - before
        return rps, p99, 1e6 * cpu / (rps * SECONDS)


def main() -> None:
    results: dict[str, list[tuple[float, float, float]]] = {}
    with sink() as collector:
        setups = {
            "off": {"OTEL_SDK_DISABLED": "true"},
            "default": {},
            "sampled": {
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
                "OTEL_METRIC_EXPORT_INTERVAL": "5000",
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": "0.1",
            },
            "full": {
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
                "OTEL_METRIC_EXPORT_INTERVAL": "5000",
            },
        }
        for round_ in range(ROUNDS):
            for name, env in setups.items():
                rps, p99, cpu = measure(env)
                results.setdefault(name, []).append((rps, p99, cpu))
                print(
                    f"round {round_ + 1} {name}: {rps:.0f} req/s, p99 {p99:.1f} ms, "
                    f"{cpu:.0f} µs CPU/request",
                    flush=True,
                )
        print(f"collector received {collector.posts} OTLP posts")
    base = median([r[0] for r in results["off"]])
    base_cpu = median([r[2] for r in results["off"]])
    print(f"cached TTS, {CLIENTS} clients, wrk {SECONDS} s per run, medians of {ROUNDS} rounds")
    print("| set-up | req/s | ÷ off | p99 ms | CPU µs/request | CPU ÷ off |")
    print("|---|---|---|---|---|---|")
    for name, runs in results.items():
        rps, p99, cpu = (median([r[i] for r in runs]) for i in range(3))
        print(
            f"| {name} | {rps:.0f} | {rps / base:.3f} | {p99:.1f} | {cpu:.0f} | "
            f"{cpu / base_cpu:.3f} |"
        )


if __name__ == "__main__":
    main()
