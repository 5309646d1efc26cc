"""Operations routes: /health, /ready, /live, /stats, /metrics."""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, Response, get

from application.health import component
from domain.errors import VoicePipeError
from entrypoints.bootstrap import Container
from entrypoints.v1.rest import container_of


@get("/health")
async def health(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Liveness plus each dependency; 200 even when degraded (the service still answers)."""
    container = container_of(request)
    report = container.health
    parts = {**report.parts(), "telemetry": {"status": "ok", **container.telemetry.exporting}}
    parts["conversation"] = conversation_part(container)
    reasons = report.reasons(parts)
    verdict = report.readiness(draining=container.draining)
    body = {
        "status": "degraded" if reasons else "ok",
        "ready": verdict.ready,
        "readiness": {"ready": verdict.ready, "reasons": list(verdict.reasons)},
        "queues": report.queue_view(),
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
    verdict = container.health.readiness(draining=container.draining)
    headers = {"cache-control": "no-store"}
    if verdict.ready:
        return Response({"ready": True}, headers=headers)
    body = {
        "ready": False,
        "code": "not_ready",
        "message": "; ".join(verdict.reasons),
        "reasons": list(verdict.reasons),
        "queues": container.health.queue_view(),
    }
    return Response(body, status_code=503, headers={**headers, "retry-after": "1"})


@get("/live")
async def live() -> Response[dict[str, str]]:
    """The process answers: nothing else is checked (a busy instance is alive, not dead)."""
    return Response({"status": "alive"}, headers={"cache-control": "no-store"})


@get("/stats")
async def stats(request: Request[Any, Any, Any]) -> dict[str, Any]:
    container = container_of(request)
    source = container.fleet_stats or container.projector  # shared, or this process's own
    snapshot, stale = await source.current()
    log_health = component(container.event_log)
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


def conversation_part(container: Container) -> dict[str, Any]:
    """Whether conversations have a chat model (without one the service is still fine)."""
    model = container.responding.model
    if model is not None:
        return {"status": "ok", "chat_model": model.model_name}
    try:
        container.responding.check()
    except VoicePipeError as missing:
        return {"status": "ok", "chat_model": None, "needs": missing.message}
    return {"status": "ok", "chat_model": None}
