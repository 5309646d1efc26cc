"""REST routes of the v1 API: /api/tts, /api/stt, /health, /stats, /metrics."""

from __future__ import annotations

import time
from typing import Any

import structlog
from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import UploadFile
from litestar.response import Stream

from application.synthesize_speech import SpeakCommand
from domain.errors import InvalidRequest, VoicePipeError
from entrypoints.bootstrap import Container
from entrypoints.http_streaming import stream_speech
from entrypoints.security import principal_of, retain
from entrypoints.views import SpeechView, TranscriptView, speech_view, transcript_view
from entrypoints.wire import SttBody, TtsBody, decode_audio, decode_body, read_form


def request_id() -> str:
    return str(structlog.contextvars.get_contextvars().get("request_id", ""))


@post("/api/tts", status_code=200)
async def text_to_speech(request: Request[Any, Any, Any]) -> SpeechView | Stream:
    container = container_of(request)
    body = decode_body(await request.body(), TtsBody)
    if not 0.25 <= body.speed <= 4.0:
        raise InvalidRequest("speed must be between 0.25 and 4.0")
    await container.access.charge_text(principal_of(request), len(body.text))
    retain(container.settings, "tts", body.text)
    if body.stream:
        return await stream_speech(container, body, request_id())
    command = SpeakCommand(
        text=body.text,
        voice=body.voice,
        audio_format=body.format,
        use_cache=body.use_cache,
        refresh_cache=body.refresh_cache,
        speed=body.speed,
    )
    result = await container.synthesize.execute(command, pipeline_id=request_id(), transport="rest")
    return speech_view(result, request_id())


@post("/api/stt", status_code=200)
async def speech_to_text(request: Request[Any, Any, Any]) -> TranscriptView:
    container = container_of(request)
    limit = container.settings.max_audio_bytes
    if request.content_type[0] == "multipart/form-data":
        audio, language = await _read_upload(request)
    else:
        body = decode_body(await request.body(), SttBody)
        audio, language = decode_audio(body.audio_base64, limit), body.language
    principal = principal_of(request)
    await container.access.check_audio(principal)
    result = await container.transcribe.execute(
        audio, language, pipeline_id=request_id(), transport="rest"
    )
    await container.access.charge_audio(principal, result.transcript.duration)
    retain(container.settings, "stt", result.transcript.text)
    return transcript_view(result, request_id())


async def _read_upload(request: Request[Any, Any, Any]) -> tuple[bytes, str | None]:
    form = await read_form(request)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidRequest("multipart upload needs a `file` field with the audio")
    language = form.get("language")
    if language is not None and not isinstance(language, str):
        raise InvalidRequest("`language` must be a text field")
    return await upload.read(), language or None


@get("/health")
async def health(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Liveness plus each dependency; 200 even when degraded (the service still answers)."""
    container = container_of(request)
    components = container.components
    parts: dict[str, dict[str, Any]] = {
        "tts": _tts_health(container),
        "stt": _stt_health(components["transcriber"]),
        "cache": _component_health(components["cache"]),
        "event_log": _component_health(components["event_log"]),
        "telemetry": {"status": "ok", **container.telemetry.exporting},
    }
    reasons = list(container.warnings)
    for name, part in parts.items():
        if part.get("status") != "ok":
            reasons.append(f"{name}: {part.get('reason', part.get('status'))}")
    body = {
        "status": "degraded" if reasons else "ok",
        "ready": True,
        "uptime_seconds": round(time.monotonic() - container.started_at, 1),
        "warnings": reasons,
        "components": parts,
    }
    return Response(body, headers={"cache-control": "no-store"})


def _tts_health(container: Container) -> dict[str, Any]:
    chain = container.synthesize.providers
    breakers = chain.states()
    problems = {
        s.provider: problem
        for s in chain.synthesizers
        if (problem := getattr(s, "problem", None)) is not None
    }
    reasons = [f"{p} circuit {state}" for p, state in breakers.items() if state != "closed"]
    reasons += [f"{p}: {problem}" for p, problem in problems.items()]
    part: dict[str, Any] = {
        "status": "degraded" if reasons else "ok",
        "providers": {s.provider: list(s.voices()) for s in chain.synthesizers},
        "breakers": breakers,
        "problems": problems,
    }
    if reasons:
        part["reason"] = "; ".join(reasons)
    return part


def _stt_health(transcriber: Any) -> dict[str, Any]:
    part: dict[str, Any] = {"status": "ok", "model": transcriber.model_name}
    if hasattr(transcriber, "names"):
        part["models"] = transcriber.names()
        part["loaded"] = transcriber.loaded()  # extra models in memory, seconds since last use
    return part


def _component_health(component: object) -> dict[str, Any]:
    report = getattr(component, "health", None)
    if callable(report):
        return dict(report())
    return {"status": "ok", "kind": type(component).__name__}


@get("/stats")
async def stats(request: Request[Any, Any, Any]) -> dict[str, Any]:
    container = container_of(request)
    projector = container.projector
    try:
        folded = await projector.catch_up()
        stale = False
    except Exception:  # the log is away: answer with what was folded so far
        folded, stale = projector.stats, True
    snapshot = folded.snapshot()
    log_health = _component_health(container.components["event_log"])
    snapshot["event_log"] = {
        "stale": stale,
        "buffered": log_health.get("buffered", 0),
        "dropped": log_health.get("dropped", 0),
    }
    return snapshot


class MetricsDisabled(VoicePipeError):
    code = "metrics_disabled"
    status = 404


@get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text exposition of the metrics folded from this instance's events."""
    text = container_of(request).telemetry.prometheus_text()
    if text is None:
        raise MetricsDisabled("metrics are off (OTEL_SDK_DISABLED or OTEL_METRICS_EXPORTER)")
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


@post("/api/token", status_code=200)
async def issue_token(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """A one-time token for a browser WebSocket, which cannot send an Authorization header."""
    container = container_of(request)
    token = container.access.issue_token(principal_of(request))
    return {
        "token": token,
        "expires_in": container.access.token_ttl,
        "subprotocols": ["voicepipe", f"token.{token}"],
    }


ROUTES = [text_to_speech, speech_to_text, health, stats, prometheus_metrics, issue_token]


def container_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Container:
    container: Container = connection.app.state.container
    return container
