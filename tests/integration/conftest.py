"""A real service on loopback: real models, real uvicorn, real HTTP and WebSocket clients."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import msgspec
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from entrypoints.app import DrainingServer, create_app, server_config
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.settings import Settings
from entrypoints.telemetry import build_telemetry

# What the session's service traced and measured, for the observability tests.
SPANS = InMemorySpanExporter()
METRICS = InMemoryMetricReader()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningServer:
    def __init__(self, container: Container) -> None:
        self.container = container
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/voice"
        settings = msgspec.structs.replace(container.settings, host="127.0.0.1", port=self.port)
        self.server = DrainingServer(server_config(create_app(container), settings))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def container() -> Container:
    telemetry = build_telemetry(span_exporter=SPANS, metric_reader=METRICS)
    return bootstrap(Settings(), telemetry=telemetry)


@pytest.fixture(scope="session")
def server(container: Container) -> Iterator[RunningServer]:
    with RunningServer(container) as running:
        yield running


@pytest.fixture(scope="session")
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The shared Redis the contract tests use; fails loudly if none answers."""
    from tests.integration.redis_server import answers, url_from_env

    url = url_from_env()
    if not answers(url):
        pytest.fail(f"no Redis answers at {url}: set REDIS_URL or start redis-server")
    return url
