"""A real service on loopback: real models, real uvicorn, real HTTP and WebSocket clients."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import msgspec
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from playwright.sync_api import Browser, Playwright, sync_playwright

from adapters.otel_telemetry import build_telemetry
from entrypoints.app import DrainingServer, create_app, server_config
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.settings import Settings

# What the session's service traced and measured, for the observability tests.
SPANS = InMemorySpanExporter()
METRICS = InMemoryMetricReader()


class SteppedClock:
    """The system clock, which a test can move forward or stop (the service's Clock port).

    Passed to `bootstrap`, it lets a test skip past an expiry instead of sleeping through it,
    or hold time still while it counts what a rate allows. `start` sets the wall time it
    reads at first (e.g. midday, so that no UTC day ends during a test); its monotonic time
    is the system's. It never goes back: moving it forward is what a slow machine could do
    anyway, and the service runs in another thread, so each reading is one attribute read.
    """

    def __init__(self, start: float | None = None) -> None:
        self._offset = 0.0 if start is None else start - time.time()
        self._mono_offset = 0.0
        self._stopped: tuple[float, float] | None = None

    def now(self) -> float:
        stopped = self._stopped
        return stopped[0] if stopped else time.time() + self._offset

    def monotonic(self) -> float:
        stopped = self._stopped
        return stopped[1] if stopped else time.monotonic() + self._mono_offset

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "time only moves forward"
        self._offset += seconds
        self._mono_offset += seconds
        stopped = self._stopped
        if stopped:
            self._stopped = (stopped[0] + seconds, stopped[1] + seconds)

    @contextmanager
    def stopped(self) -> Iterator[SteppedClock]:
        """Inside, no time passes but what `advance` adds; after, the clock runs again."""
        self._stopped = (self.now(), self.monotonic())
        try:
            yield self
        finally:
            self._stopped = None


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: .ci/run installs it (apt-get install chromium)")
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright, fake_mic: Path) -> Iterator[Browser]:
    """Chromium with the requesting module's `fake_mic` as its microphone."""
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            *FLAGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={fake_mic}",
        ],
    )
    yield launched
    launched.close()


def midday_utc() -> float:
    """Noon (UTC) of today: a start far from the day boundaries that daily quotas count by."""
    return time.time() // 86_400 * 86_400 + 43_200


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


def sharing_models(container: Container, settings: Settings) -> Container:
    """Another service with its own settings, on the session service's loaded models."""
    return bootstrap(
        settings,
        synthesizers=container.speech.providers.synthesizers,
        transcriber=container.transcriber,
        voice_activity=container.voice_activity,
        turns=container.listen.turns,
    )


@pytest.fixture(scope="session")
def clock() -> SteppedClock:
    """The session service's clock."""
    return SteppedClock()


@pytest.fixture(scope="session")
def container(clock: SteppedClock) -> Container:
    telemetry = build_telemetry(span_exporter=SPANS, metric_reader=METRICS)
    # Utterances end on silence here: Piper's pauses vary run to run, and the turn model (the
    # default) may end a turn at the comma of "Good morning, I would like...", which tests
    # counting one final per sentence cannot allow. Semantic turns have tests of their own.
    settings = Settings(stt_turn_detection="silence")
    return bootstrap(settings, telemetry=telemetry, clock=clock)


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
