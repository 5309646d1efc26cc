"""Operations routes: /health, /stats, /metrics."""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, Response, get

from domain.errors import VoicePipeError
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
    body = {
        "status": "degraded" if reasons else "ok",
        "ready": True,
        "uptime_seconds": round(time.monotonic() - container.started_at, 1),
        "warnings": reasons,
        "components": parts,
    }
    return Response(body, headers={"cache-control": "no-store"})


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


ROUTES = [health, stats, prometheus_metrics]
