"""Every HTTP answer gets a request id (X-Request-ID, honoured if sane) and one access line.

An ASGI wrapper outside Litestar's router, so answers no route handles (404, 405), and the
503 of a shutdown, get them too: Litestar's own middleware runs for matched routes only.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from opentelemetry import trace

access_log = structlog.get_logger("voicepipe.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContext:
    """ASGI app around `app`: binds `request_id` for every log line of an HTTP request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 0
        traced: dict[str, str] = {}  # the request's span ends before its access line

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
                span = trace.get_current_span().get_span_context()
                if span.is_valid:
                    traced["trace_id"] = trace.format_trace_id(span.trace_id)
                    traced["span_id"] = trace.format_span_id(span.span_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            access_log.info(
                "request",
                method=scope.get("method"),
                path=scope["path"],
                status=status,
                ms=round(1000 * (time.perf_counter() - started), 2),
                **traced,
            )
            structlog.contextvars.clear_contextvars()
