"""Traces and metrics of a real service, read through an in-memory exporter and reader."""

from __future__ import annotations

import json
import secrets
import time

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from websockets.sync.client import connect

from tests.integration.conftest import METRICS, SPANS, RunningServer
from tests.integration.speech import speak, speech_16k_pcm
from tests.integration.test_streaming import receive_until, send_audio, silence
from tests.telemetry_probe import attrs, children, named, total


def traceparent() -> tuple[str, str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, parent_id, f"00-{trace_id}-{parent_id}-01"


def trace_spans(trace_id: str, until: str, seconds: float = 10.0) -> list[ReadableSpan]:
    """The finished spans of one trace, once the span named `until` has ended."""
    deadline = time.monotonic() + seconds
    while True:
        spans = [s for s in SPANS.get_finished_spans() if s.context.trace_id == int(trace_id, 16)]
        if any(s.name == until for s in spans) or time.monotonic() > deadline:
            return spans
        time.sleep(0.02)


def within(child: ReadableSpan, parent: ReadableSpan) -> bool:
    assert child.start_time and child.end_time and parent.start_time and parent.end_time
    return parent.start_time <= child.start_time <= child.end_time <= parent.end_time


def tts_counts() -> dict[str, float]:
    return {
        "ok": total(METRICS, "voicepipe.requests", pipeline="tts", transport="rest", outcome="ok"),
        "synthesis": total(METRICS, "voicepipe.step.duration", step="synthesis", provider="piper"),
        "miss": total(METRICS, "voicepipe.cache.lookups", result="miss"),
        "hit": total(METRICS, "voicepipe.cache.lookups", result="hit"),
        "rtf": total(METRICS, "voicepipe.model.real_time_factor", pipeline="tts", model="piper"),
    }


def test_tts_request_is_one_trace_with_a_span_per_step(http: httpx.Client) -> None:
    before = tts_counts()
    trace_id, parent_id, header = traceparent()
    text = f"Tracing request number {secrets.randbelow(10**6)}."
    response = http.post("/api/tts", json={"text": text}, headers={"traceparent": header})
    assert response.status_code == 200
    spans = trace_spans(trace_id, "POST /api/tts")
    server = named(spans, "POST /api/tts")
    assert server.kind == SpanKind.SERVER and server.parent is not None
    assert server.parent.span_id == int(parent_id, 16)  # the caller's W3C context is honoured
    assert attrs(server)["http.response.status_code"] == 200
    run = server  # the request's span carries the run's attributes; steps are its children
    assert attrs(run)["voicepipe.cache.hit"] is False and attrs(run)["voicepipe.fallback"] is False
    assert attrs(run)["voicepipe.provider"] == "piper"
    steps = {s.name: s for s in children(spans, run)}
    assert set(steps) == {
        "tts.cache",
        "tts.synthesis",
        "tts.processing",
        "tts.encoding",
        "tts.sentiment",
    }
    synthesis = attrs(steps["tts.synthesis"])
    assert synthesis["voicepipe.provider"] == "piper" and synthesis["voicepipe.voice"]
    assert synthesis["voicepipe.audio.duration_ms"] > 500
    assert all(within(s, run) for s in steps.values() if s.name != "tts.sentiment")
    after = tts_counts()
    assert {k: after[k] - before[k] for k in before} == {
        "ok": 1, "synthesis": 1, "miss": 1, "hit": 0, "rtf": 1,
    }  # fmt: skip

    # The same text again: a cache hit, no synthesis span.
    trace_id, _, header = traceparent()
    assert http.post("/api/tts", json={"text": text}, headers={"traceparent": header}).is_success
    spans = trace_spans(trace_id, "POST /api/tts")
    run = named(spans, "POST /api/tts")
    assert attrs(run)["voicepipe.cache.hit"] is True and attrs(run)["voicepipe.cached"] is True
    assert [s.name for s in children(spans, run)] == ["tts.cache"]
    assert total(METRICS, "voicepipe.cache.lookups", result="hit") == before["hit"] + 1


def test_stt_request_traces_decoding_and_transcription(http: httpx.Client) -> None:
    audio = speak(http, "The river is cold in the morning.")
    before_ok = total(METRICS, "voicepipe.requests", pipeline="stt", outcome="ok")
    before_rtf = total(METRICS, "voicepipe.model.real_time_factor", pipeline="stt")
    trace_id, _, header = traceparent()
    response = http.post(
        "/api/stt", files={"file": ("a.wav", audio)}, headers={"traceparent": header}
    )
    assert response.status_code == 200
    spans = trace_spans(trace_id, "POST /api/stt")
    run = named(spans, "POST /api/stt")
    steps = {s.name: s for s in children(spans, run)}
    assert set(steps) == {"stt.decoding", "stt.transcription", "stt.sentiment"}
    heard = attrs(steps["stt.transcription"])
    assert heard["voicepipe.language"] == "en" and heard["voicepipe.model"]
    assert heard["voicepipe.audio.duration_ms"] > 1000
    assert attrs(run)["voicepipe.transport"] == "rest"
    assert total(METRICS, "voicepipe.requests", pipeline="stt", outcome="ok") == before_ok + 1
    assert total(METRICS, "voicepipe.model.real_time_factor", pipeline="stt") == before_rtf + 1


def test_a_failed_request_records_the_error_on_its_spans(http: httpx.Client) -> None:
    before = total(METRICS, "voicepipe.requests", pipeline="stt", outcome="invalid_audio")
    trace_id, _, header = traceparent()
    response = http.post(
        "/api/stt", files={"file": ("a.wav", b"not audio at all")}, headers={"traceparent": header}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_audio" and body["trace_id"] == trace_id
    spans = trace_spans(trace_id, "POST /api/stt")
    run = named(spans, "POST /api/stt")
    assert run.status.status_code == StatusCode.ERROR
    assert attrs(run)["error.type"] == "invalid_audio"
    assert attrs(run)["voicepipe.failed_step"] == "decoding"
    assert {e.name for e in run.events} == {"exception"}
    assert (
        total(METRICS, "voicepipe.requests", pipeline="stt", outcome="invalid_audio") == before + 1
    )


def test_websocket_session_traces_each_message(server: RunningServer) -> None:
    trace_id, parent_id, header = traceparent()
    with connect(server.ws_url, max_size=None, additional_headers={"traceparent": header}) as ws:
        ws.send(json.dumps({"type": "text", "id": "a", "text": "Hello over the socket."}))
        assert json.loads(ws.recv(timeout=60))["type"] == "audio"
        # Counted once admitted, which an answer proves (the handshake alone may come first).
        assert total(METRICS, "voicepipe.websocket.connections") >= 1
        ws.send(json.dumps({"type": "no_such_type"}))
        error = json.loads(ws.recv(timeout=10))
        assert error["type"] == "error" and error["trace_id"] == trace_id
    spans = trace_spans(trace_id, "WS /ws/voice")
    session = named(spans, "WS /ws/voice")
    assert session.parent is not None and session.parent.span_id == int(parent_id, 16)
    messages = children(spans, session)
    assert sorted(s.name for s in messages) == ["WS message", "WS text"]  # the bad one: undecoded
    spoken = named(messages, "WS text")
    assert attrs(spoken)["voicepipe.transport"] == "ws"
    assert "tts.synthesis" in {s.name for s in children(spans, spoken)}
    bad = named(messages, "WS message")
    assert attrs(bad)["error.type"] == "unknown_message_type"


def test_streaming_stt_measures_end_of_speech_to_final(server: RunningServer) -> None:
    before = total(METRICS, "voicepipe.stt.end_of_speech_to_final")
    with connect(server.ws_url, max_size=None) as ws:
        ws.send(json.dumps({"type": "stt_start"}))
        ws.recv(timeout=10)
        send_audio(ws, speech_16k_pcm("Please call me back tomorrow.") + silence(1.2))
        final = receive_until(ws, "final")[-1]
    assert total(METRICS, "voicepipe.stt.end_of_speech_to_final") == before + 1
    assert final["text"]


def test_metrics_endpoint_serves_prometheus_text(http: httpx.Client) -> None:
    assert http.post("/api/tts", json={"text": "Count me."}).is_success
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    for name in (
        "voicepipe_requests_total",
        "voicepipe_request_duration_seconds_bucket",
        "voicepipe_step_duration_seconds_bucket",
        "voicepipe_cache_lookups_total",
        "voicepipe_circuit_state",
        "voicepipe_queue_depth",
        "voicepipe_websocket_connections",
        "voicepipe_model_real_time_factor_bucket",
    ):
        assert f"\n{name}{{" in text, name
    assert "voicepipe_circuit_state{" in text and 'provider="piper"' in text
    health = http.get("/health").json()
    assert health["components"]["telemetry"]["metrics"] == ["prometheus"]
