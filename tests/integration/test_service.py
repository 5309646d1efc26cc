"""Health, stats as a projection of events, request ids, and the `voicepipe serve` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.integration.conftest import free_port
from tests.integration.speech import speak

ROOT = Path(__file__).resolve().parents[2]


def test_health_reports_each_component(http: httpx.Client) -> None:
    body = http.get("/health").json()
    assert body["status"] == "ok" and body["ready"] is True
    components = body["components"]
    assert components["tts"]["providers"] == {"piper": ["en_US-joe-medium"]}
    assert components["stt"]["model"] == "tiny.en"
    assert components["cache"]["status"] == "ok"
    assert components["event_log"]["status"] == "ok"


def test_stats_follow_the_requests(http: httpx.Client) -> None:
    before = http.get("/stats").json()
    text = f"Stats are counted from events {time.time()}."
    speak(http, text)  # miss
    speak(http, text)  # hit
    http.post("/api/tts", json={"text": ""})  # failure
    after = http.get("/stats").json()
    tts_before, tts_after = before["requests"]["tts"], after["requests"]["tts"]
    assert tts_after["received"] - tts_before["received"] == 3
    assert tts_after["completed"] - tts_before["completed"] == 2
    assert tts_after["failed"] - tts_before["failed"] == 1
    assert after["cache"]["hits"] - before["cache"]["hits"] == 1
    assert after["cache"]["misses"] - before["cache"]["misses"] == 1
    assert after["errors"]["empty_text"] - before["errors"].get("empty_text", 0) == 1
    assert after["providers"]["piper"]["voices"]["en_US-joe-medium"] >= 1
    steps = after["latency_ms"]["steps"]
    assert {"synthesis", "processing", "encoding", "sentiment", "cache"} <= set(steps)
    assert steps["synthesis"]["p50"] > 0
    assert after["latency_ms"]["pipelines"]["tts"]["p99"] >= steps["synthesis"]["p50"]


def test_request_id_is_returned_and_honoured(http: httpx.Client) -> None:
    response = http.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = http.post("/api/tts", json={"text": ""})
    assert generated.json()["request_id"] == generated.headers["x-request-id"]
    assert len(generated.headers["x-request-id"]) == 32


def test_serve_command_starts_logs_json_and_keeps_text_out_of_logs() -> None:
    port = free_port()
    # Traces go to a collector that is not running: requests and shutdown must not care.
    dead_collector = f"http://127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "LOG_FORMAT": "json",
        "PORT": str(port),
        "OTEL_EXPORTER_OTLP_ENDPOINT": dead_collector,
    }
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli", "serve", "--host", "127.0.0.1"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    secret = "Purple elephants whisper secrets."
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            while True:
                assert process.poll() is None, "server exited"
                assert time.monotonic() - started < 60, "server did not start"
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            audio = speak(client, secret)
            heard = client.post("/api/stt", files={"file": ("a.wav", audio)}).json()
            assert "elephant" in heard["text"].lower()
            traced = client.get(
                "/health", headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"}
            )
            assert traced.json()["components"]["telemetry"]["traces"] == ["otlp"]
    finally:
        process.send_signal(signal.SIGINT)
        stopping = time.monotonic()
        _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - stopping < 15  # the unreachable collector does not hold it up
    assert process.returncode == 0, stderr[-2000:]
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    messages = [line["event"] for line in lines]
    assert any("API_KEYS" in m for m in messages)  # says it is open
    assert "ready" in messages
    requests = [line for line in lines if line["event"] == "request"]
    assert len(requests) >= 3
    assert all(len(line["request_id"]) == 32 for line in requests)
    assert all(len(line["trace_id"]) == 32 for line in requests)
    assert next(line for line in requests if line["trace_id"] == trace_id)["path"] == "/health"
    assert "elephant" not in stderr.lower() and "whisper secrets" not in stderr.lower()


def test_playground_page_is_served(http: httpx.Client) -> None:
    response = http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/api/tts" in response.text and "/api/stt" in response.text
    assert "http://" not in response.text and "https://" not in response.text  # no CDN
