"""A server span per HTTP request or WebSocket session, continuing the caller's W3C trace."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode


def current_trace_id() -> str:
    """Hex id of the trace in progress, '' outside one: for logs and error bodies."""
    span_context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(span_context.trace_id) if span_context.is_valid else ""


def _carrier(scope: Scope) -> dict[str, str]:
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in (b"traceparent", b"tracestate", b"baggage")
    }


def traced(tracer: trace.Tracer) -> Callable[[ASGIApp], ASGIApp]:
    """Middleware factory for one tracer (the container's)."""

    def middleware_for(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            kind = scope["type"]
            if kind not in (ScopeType.HTTP, ScopeType.WEBSOCKET):
                await app(scope, receive, send)
                return
            route = scope.get("path_template") or scope["path"]
            method = scope.get("method", "GET") if kind == ScopeType.HTTP else "WS"
            attributes: dict[str, Any] = {"http.route": route, "url.path": scope["path"]}
            if kind == ScopeType.HTTP:
                attributes["http.request.method"] = method
            span = tracer.start_span(
                f"{method} {route}",
                context=propagate.extract(_carrier(scope)),
                kind=SpanKind.SERVER,
                attributes=attributes,
            )
            token = context.attach(trace.set_span_in_context(span))
            status = 0

            async def send_traced(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_traced)
            except BaseException as error:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                raise
            finally:
                if status:
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
                context.detach(token)
                span.end()

        return middleware

    return middleware_for
