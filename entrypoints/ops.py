"""Operations routes: /health, /ready, /live, /stats, /metrics."""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, Response, get

from domain.errors import VoicePipeError
from domain.readiness import QueueLoad, Readiness, readiness
from entrypoints.bootstrap import Container
from entrypoints.v1.rest import container_of


@get("/health")
async def health(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Liveness plus each dependency; 200 even when degraded (the service still answers)."""
    container = container_of(request)
    parts: dict[str, dict[str, Any]] = {
        "tts": _tts_health(container),
        "stt": _stt_health(container.transcriber),
        "cache": _component_health(container.cache),
        "event_log": _component_health(container.event_log),
        "telemetry": {"status": "ok", **container.telemetry.exporting},
    }
    reasons = list(container.warnings)
    for name, part in parts.items():
        if part.get("status") != "ok":
            reasons.append(f"{name}: {part.get('reason', part.get('status'))}")
    verdict = _readiness(container)
    body = {
        "status": "degraded" if reasons else "ok",
        "ready": verdict.ready,
        "readiness": {"ready": verdict.ready, "reasons": list(verdict.reasons)},
        "queues": _queue_view(container),
        "uptime_seconds": round(time.monotonic() - container.started_at, 1),
        "warnings": reasons,
        "components": parts,
    }
    return Response(body, headers={"cache-control": "no-store"})


@get("/ready")
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """May the balancer send new work here? 503 while a model queue is saturated or the
    instance is draining; what is already here keeps going either way."""
    container = container_of(request)
    verdict = _readiness(container)
    headers = {"cache-control": "no-store"}
    if verdict.ready:
        return Response({"ready": True}, headers=headers)
    body = {
        "ready": False,
        "code": "not_ready",
        "message": "; ".join(verdict.reasons),
        "reasons": list(verdict.reasons),
        "queues": _queue_view(container),
    }
    return Response(body, status_code=503, headers={**headers, "retry-after": "1"})


@get("/live")
async def live() -> Response[dict[str, str]]:
    """The process answers: nothing else is checked (a busy instance is alive, not dead)."""
    return Response({"status": "alive"}, headers={"cache-control": "no-store"})


def _queues(container: Container) -> list[QueueLoad]:
    """Every bounded model queue: each TTS provider's that has one, and the STT models' one."""
    components: list[tuple[str, object]] = [
        (f"tts {s.provider}", s) for s in container.speech.providers.synthesizers
    ]
    components.append((f"stt {container.transcriber.model_name}", container.transcriber))
    return [
        QueueLoad(
            name=name,
            queued=int(getattr(component, "queued", 0)),
            max_queue=int(getattr(component, "max_queue", 0)),
        )
        for name, component in components
        if hasattr(component, "queued") and hasattr(component, "max_queue")
    ]


def _queue_view(container: Container) -> dict[str, dict[str, int]]:
    return {q.name: {"queued": q.queued, "max": q.max_queue} for q in _queues(container)}


def _readiness(container: Container) -> Readiness:
    return readiness(
        _queues(container),
        saturated_at=container.settings.ready_queue_fraction,
        draining=container.draining,
    )


def _tts_health(container: Container) -> dict[str, Any]:
    chain = container.speech.providers
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
    log_health = _component_health(container.event_log)
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


ROUTES = [health, ready, live, stats, prometheus_metrics]
