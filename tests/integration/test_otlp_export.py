"""OTLP export to a collector over HTTP and gRPC, and a service that shrugs off a dead one."""

from __future__ import annotations

import time

import pytest

from adapters.memory_event_log import InMemoryEventLog
from adapters.observed_event_log import ObservedEventLog
from adapters.otel_telemetry import build_telemetry
from tests.integration.conftest import free_port
from tests.integration.fake_collector import GrpcCollector, HttpCollector
from tests.unit.test_telemetry import fallback_batch


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
async def test_spans_and_metrics_reach_the_collector(
    protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = HttpCollector() if protocol == "http/protobuf" else GrpcCollector()
    with collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
        telemetry = build_telemetry()
        assert telemetry.exporting == {"metrics": ["otlp", "prometheus"], "traces": ["otlp"]}
        log = ObservedEventLog(InMemoryEventLog(), telemetry.subscribers)
        with telemetry.tracer.start_as_current_span("POST /api/tts"):
            await log.append(fallback_batch())
        telemetry.shutdown(seconds=10)  # flushes both exporters
    received = collector.received
    assert received.services == {"voicepipe"}
    assert {"POST /api/tts", "tts.cache", "tts.synthesis"} <= set(received.spans)
    assert {"voicepipe.requests", "voicepipe.provider.fallbacks"} <= set(received.metrics)


async def test_a_dead_collector_costs_nothing_but_the_telemetry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # closed
    telemetry = build_telemetry()
    log = ObservedEventLog(InMemoryEventLog(), telemetry.subscribers)
    started = time.monotonic()
    for i in range(200):
        with telemetry.tracer.start_as_current_span("POST /api/tts"):
            await log.append(fallback_batch(pid=f"r{i}"))
    assert time.monotonic() - started < 2.0  # appends never wait on the exporter
    assert len(await log.read(None, 10_000)) == 200 * len(fallback_batch())
    assert b"voicepipe_requests_total" in (telemetry.prometheus_text() or b"")
    started = time.monotonic()
    telemetry.shutdown(seconds=2)
    assert time.monotonic() - started < 5.0  # bounded: a restart is not held up
