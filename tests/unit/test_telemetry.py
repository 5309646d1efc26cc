"""Metrics and spans are folds of the domain events; the set-up follows the OTEL_* variables."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from adapters.memory_event_log import InMemoryEventLog
from adapters.observed_event_log import ObservedEventLog
from adapters.otel_telemetry import Telemetry, build_telemetry
from application.synthesize_speech import SpeakCommand
from domain.errors import VoicePipeError
from domain.events import (
    AudioStreamed,
    CacheLookedUp,
    CircuitClosed,
    CircuitOpened,
    DomainEvent,
    ProviderFailed,
    ProviderFellBack,
    RequestCompleted,
    RequestFailed,
    RequestReceived,
    SpeechSynthesized,
    SpeechTranscribed,
    StepDegraded,
)
from tests.telemetry_probe import attrs, children, duration_ns, named, points, total
from tests.unit.conftest import FakeWorld


def probe() -> tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader]:
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    return build_telemetry(span_exporter=spans, metric_reader=reader), spans, reader


def fallback_batch(pid: str = "r1", t: float = 1000.0) -> list[DomainEvent]:
    """A TTS request whose cloud provider failed, opened its circuit, and fell back to piper."""
    return [
        RequestReceived(
            pipeline_id=pid, occurred_at=t, pipeline="tts", transport="rest", input_size=9
        ),
        CacheLookedUp(pipeline_id=pid, occurred_at=t + 0.001, hit=False, latency_ms=1.0),
        ProviderFailed(
            pipeline_id=pid,
            occurred_at=t + 0.201,
            provider="elevenlabs",
            code="provider_timeout",
            latency_ms=200.0,
        ),
        CircuitOpened(pipeline_id=pid, occurred_at=t + 0.201, provider="elevenlabs"),
        SpeechSynthesized(
            pipeline_id=pid,
            occurred_at=t + 0.401,
            provider="piper",
            voice="joe",
            audio_ms=2000.0,
            latency_ms=200.0,
        ),
        ProviderFellBack(
            pipeline_id=pid, occurred_at=t + 0.401, from_provider="elevenlabs", to_provider="piper"
        ),
        RequestCompleted(pipeline_id=pid, occurred_at=t + 0.5, pipeline="tts", latency_ms=500.0),
    ]


def test_metrics_fold_a_fallback() -> None:
    telemetry, _, reader = probe()
    telemetry.metrics.circuits["elevenlabs"] = 0
    telemetry.metrics.observe(fallback_batch())
    assert total(reader, "voicepipe.requests", pipeline="tts", transport="rest", outcome="ok") == 1
    assert (
        total(reader, "voicepipe.provider.failures", provider="elevenlabs", code="provider_timeout")
        == 1
    )
    assert (
        total(
            reader, "voicepipe.provider.fallbacks", from_provider="elevenlabs", to_provider="piper"
        )
        == 1
    )
    assert total(reader, "voicepipe.circuit.state", provider="elevenlabs") == 2
    assert total(reader, "voicepipe.circuit.transitions", provider="elevenlabs", state="open") == 1
    assert total(reader, "voicepipe.cache.lookups", result="miss") == 1
    (rtf,) = points(reader, "voicepipe.model.real_time_factor", pipeline="tts", model="piper")
    assert rtf.sum == pytest.approx(0.1)  # 200 ms for 2 s of audio
    assert points(reader, "voicepipe.tts.time_to_first_audio") == []  # not streamed
    (synthesis,) = points(reader, "voicepipe.step.duration", step="synthesis", provider="piper")
    assert synthesis.sum == pytest.approx(0.2)
    telemetry.metrics.observe(
        [CircuitClosed(pipeline_id="r2", occurred_at=1.0, provider="elevenlabs")]
    )
    assert total(reader, "voicepipe.circuit.state", provider="elevenlabs") == 0


def test_metrics_fold_failures_streams_and_utterances() -> None:
    telemetry, _, reader = probe()
    telemetry.metrics.observe(
        [
            RequestReceived(
                pipeline_id="b", occurred_at=1.0, pipeline="stt", transport="ws", input_size=9
            ),
            RequestFailed(
                pipeline_id="b",
                occurred_at=1.1,
                pipeline="stt",
                step="transcription",
                code="busy",
                latency_ms=5.0,
            ),
            RequestReceived(
                pipeline_id="s", occurred_at=1.0, pipeline="tts", transport="ws", input_size=9
            ),
            StepDegraded(pipeline_id="s", occurred_at=1.0, step="cache", code="cache_unavailable"),
            AudioStreamed(
                pipeline_id="s",
                occurred_at=2.0,
                chunks=3,
                first_chunk_ms=80.0,
                audio_ms=3000.0,
                cancelled=False,
            ),
            RequestCompleted(pipeline_id="s", occurred_at=2.0, pipeline="tts", latency_ms=1000.0),
            SpeechTranscribed(
                pipeline_id="u",
                occurred_at=3.0,
                model="base.en",
                language="en",
                language_probability=1.0,
                audio_ms=1500.0,
                latency_ms=300.0,
                segments=1,
                end_of_speech_ms=650.0,
            ),
        ]
    )
    assert total(reader, "voicepipe.busy.rejections", pipeline="stt") == 1
    assert total(reader, "voicepipe.requests", pipeline="stt", outcome="busy") == 1
    assert total(reader, "voicepipe.cache.lookups", result="error") == 1
    assert total(reader, "voicepipe.degraded.steps", step="cache") == 1
    (first,) = points(reader, "voicepipe.tts.time_to_first_audio", transport="ws")
    assert first.sum == pytest.approx(0.08)
    (lag,) = points(reader, "voicepipe.stt.end_of_speech_to_final", model="base.en")
    assert lag.sum == pytest.approx(0.65)
    (audio,) = points(reader, "voicepipe.audio.processed", pipeline="stt")
    assert audio.value == pytest.approx(1.5)


def test_steps_are_children_of_the_request_span_with_their_real_timing() -> None:
    telemetry, spans, _ = probe()
    with telemetry.tracer.start_as_current_span("POST /api/tts") as request:
        for subscriber in telemetry.subscribers:
            subscriber(fallback_batch(t=1000.0))
    finished = list(spans.get_finished_spans())
    server = named(finished, "POST /api/tts")
    assert server.context.span_id == request.get_span_context().span_id
    assert attrs(server)["voicepipe.fallback"] is True
    assert attrs(server)["voicepipe.provider"] == "piper"
    assert attrs(server)["voicepipe.transport"] == "rest"
    steps = children(finished, server)
    assert [s.name for s in steps] == ["tts.cache", "tts.synthesis", "tts.synthesis"]
    failed, served = steps[1], steps[2]
    assert attrs(failed)["voicepipe.provider"] == "elevenlabs"
    assert failed.status.status_code == StatusCode.ERROR
    assert attrs(served)["voicepipe.provider"] == "piper"
    assert served.end_time == int(1000.401 * 10**9)
    assert duration_ns(served) == 200 * 10**6
    assert {e.name for e in server.events} == {"CircuitOpened", "fallback"}


def test_a_run_outside_any_request_gets_a_span_of_its_own() -> None:
    telemetry, spans, _ = probe()
    for subscriber in telemetry.subscribers:  # e.g. an utterance finished by a stream
        subscriber(fallback_batch(t=1000.0))
    finished = list(spans.get_finished_spans())
    run = named(finished, "tts")
    assert run.parent is None
    assert run.start_time == 1000 * 10**9 and run.end_time == int(1000.5 * 10**9)
    assert [s.name for s in children(finished, run)] == [
        "tts.cache",
        "tts.synthesis",
        "tts.synthesis",
    ]


def test_a_failed_run_marks_its_span() -> None:
    telemetry, spans, _ = probe()
    for subscriber in telemetry.subscribers:
        subscriber(
            [
                RequestReceived(
                    pipeline_id="x", occurred_at=5.0, pipeline="stt", transport="rest", input_size=4
                ),
                RequestFailed(
                    pipeline_id="x",
                    occurred_at=5.01,
                    pipeline="stt",
                    step="decoding",
                    code="invalid_audio",
                    latency_ms=10.0,
                ),
            ]
        )
    run = named(list(spans.get_finished_spans()), "stt")
    assert run.status.status_code == StatusCode.ERROR
    assert attrs(run)["error.type"] == "invalid_audio"
    assert attrs(run)["voicepipe.failed_step"] == "decoding"


async def test_metrics_agree_with_the_stats_projection(world: FakeWorld) -> None:
    telemetry, _, reader = probe()
    for i, text in enumerate(["good one", "good one", "two", "", "x" * 500]):
        with contextlib.suppress(VoicePipeError):
            await world.container.synthesize.execute(
                SpeakCommand(text=text), pipeline_id=f"t{i}", transport="test"
            )
    events = [event for _, event in await world.events.read(None, 1000)]
    telemetry.metrics.observe(events)
    snapshot = (await world.container.projector.catch_up()).snapshot()
    assert (
        total(reader, "voicepipe.requests", pipeline="tts", outcome="ok")
        == snapshot["requests"]["tts"]["completed"]
    )
    failed = (
        total(reader, "voicepipe.requests", pipeline="tts")
        - snapshot["requests"]["tts"]["completed"]
    )
    assert failed == snapshot["requests"]["tts"]["failed"] == 2
    assert total(reader, "voicepipe.cache.lookups", result="hit") == 1


async def test_a_failing_subscriber_never_fails_an_append() -> None:
    seen: list[Sequence[DomainEvent]] = []

    def broken(_: Sequence[DomainEvent]) -> None:
        raise RuntimeError("boom")

    inner = InMemoryEventLog()
    log = ObservedEventLog(inner, [broken, seen.append])
    batch = fallback_batch()
    await log.append(batch)
    assert seen == [batch]
    assert [e for _, e in await log.read(None, 100)] == batch


def test_sdk_disabled_turns_everything_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    telemetry = build_telemetry()
    assert telemetry.prometheus_text() is None
    assert telemetry.subscribers == []
    with telemetry.tracer.start_as_current_span("x") as span:
        assert not span.get_span_context().is_valid


def test_without_an_exporter_spans_carry_ids_but_record_nothing() -> None:
    telemetry = build_telemetry()
    assert telemetry.exporting == {"metrics": ["prometheus"], "traces": []}
    with telemetry.tracer.start_as_current_span("x") as span:
        assert span.get_span_context().is_valid and not span.is_recording()
    assert len(telemetry.subscribers) == 1  # metrics only: no spans built from events
    telemetry.metrics.observe(fallback_batch())
    text = (telemetry.prometheus_text() or b"").decode()
    assert "voicepipe_requests_total{" in text and 'outcome="ok"' in text


@pytest.mark.parametrize(
    ("env", "metrics", "traces"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, ["otlp", "prometheus"], ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "none"}, [], ["console"]),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9",
                "OTEL_METRICS_EXPORTER": "prometheus",
            },
            ["prometheus"],
            ["otlp"],
        ),
    ],
)
def test_exporters_follow_the_standard_variables(
    env: dict[str, str], metrics: list[str], traces: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    telemetry = build_telemetry()
    try:
        assert telemetry.exporting == {"metrics": metrics, "traces": traces}
        assert (telemetry.prometheus_text() is not None) == ("prometheus" in metrics)
        with telemetry.tracer.start_as_current_span("x") as span:
            assert span.is_recording()
    finally:
        telemetry.shutdown(seconds=1)
