"""Every error leaves as JSON with a stable `code` and a human `message`; never a stack trace."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from opentelemetry import trace

from domain.errors import VoicePipeError
from entrypoints.tracing import current_trace_id

log = structlog.get_logger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_body(code: str, message: str) -> dict[str, str]:
    """The error as clients see it; its code also marks the request's span."""
    request_id = structlog.contextvars.get_contextvars().get("request_id", "")
    trace.get_current_span().set_attribute("error.type", code)
    return {
        "code": code,
        "message": message,
        "request_id": request_id,
        "trace_id": current_trace_id(),
    }


def voicepipe_error(_: Request[Any, Any, Any], error: VoicePipeError) -> Response[dict[str, str]]:
    # Busy, provider outages and limits are worth another try later: say when.
    headers: dict[str, str] = {}
    if error.status in (429, 503):
        headers["retry-after"] = str(getattr(error, "retry_after", 1))
    if error.status == 401:
        headers["www-authenticate"] = 'Bearer realm="voicepipe"'

    return Response(
        error_body(error.code, error.message), status_code=error.status, headers=headers or None
    )


def http_error(_: Request[Any, Any, Any], error: HTTPException) -> Response[dict[str, str]]:
    code = _HTTP_CODES.get(error.status_code, "http_error")
    message = error.detail if error.status_code != 413 else "the request body is too large"
    return Response(error_body(code, message), status_code=error.status_code, headers=error.headers)


def unexpected_error(_: Request[Any, Any, Any], error: Exception) -> Response[dict[str, str]]:
    log.error("unhandled error", exc_info=error)
    trace.get_current_span().record_exception(error)
    return Response(
        error_body("internal_error", "internal error; the request id is in the logs"),
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


EXCEPTION_HANDLERS = {
    VoicePipeError: voicepipe_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
