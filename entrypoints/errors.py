"""One table from errors to what every transport says: HTTP status and JSON body, the
WebSocket error frame, OpenAI's error shape. Never a stack trace."""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException
from opentelemetry import trace

from domain.errors import InvalidRequest, UnknownVoice, VoicePipeError
from entrypoints.tracing import current_trace_id

log = structlog.get_logger(__name__)

# Litestar's own refusals (routing, body size, methods), by status.
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


class Problem(msgspec.Struct, frozen=True):
    """An error as every transport sees it."""

    status: int
    code: str
    message: str
    retry_after: int | None = None  # 429 and 503: worth another try later
    param: str | None = None  # OpenAI's name of the field at fault


def problem_of(error: BaseException) -> Problem:
    if isinstance(error, VoicePipeError):
        retry = int(getattr(error, "retry_after", 1)) if error.status in (429, 503) else None
        param = getattr(error, "param", None)
        if param is None and isinstance(error, UnknownVoice):
            param = "voice"
        return Problem(error.status, error.code, error.message, retry, param)
    if isinstance(error, HTTPException):
        status = error.status_code
        message = str(error.detail) if status != 413 else "the request body is too large"
        return Problem(status, _HTTP_CODES.get(status, "http_error"), message)
    return Problem(500, "internal_error", "internal error; the request id is in the logs")


def request_id() -> str:
    return str(structlog.contextvars.get_contextvars().get("request_id", ""))


def http_body(problem: Problem) -> dict[str, str]:
    """The v1 body; its code also marks the request's span."""
    trace.get_current_span().set_attribute("error.type", problem.code)
    return {
        "code": problem.code,
        "message": problem.message,
        "request_id": request_id(),
        "trace_id": current_trace_id(),
    }


def openai_body(problem: Problem, openai_code: str | None = None) -> dict[str, Any]:
    """OpenAI's shape, so its clients raise their usual exceptions."""
    kind = "invalid_request_error" if problem.status < 500 else "server_error"
    code = openai_code or problem.code
    error = {"message": problem.message, "type": kind, "param": problem.param, "code": code}
    return {"error": error}


def deepgram_body(problem: Problem) -> dict[str, Any]:
    """Deepgram's shape: `err_code` (the service's code, upper case), `err_msg`, `request_id`."""
    body: dict[str, Any] = {
        "err_code": problem.code.upper(),
        "err_msg": problem.message,
        "request_id": request_id(),
    }
    if problem.param is not None:
        body["param"] = problem.param
    return body


def speaks_deepgram(path: str) -> bool:
    return path in ("/v1/listen", "/v1/speak") or path.startswith(("/v1/listen/", "/v1/speak/"))


def body_for(path: str, problem: Problem) -> dict[str, Any]:
    """The error body in the shape of the API `path` belongs to: Deepgram's on its paths,
    OpenAI's elsewhere under /v1, the v1 body everywhere else."""
    if speaks_deepgram(path):
        return deepgram_body(problem)
    if path.startswith("/v1/"):
        return openai_body(problem)
    return http_body(problem)


def headers_of(problem: Problem) -> dict[str, str]:
    headers: dict[str, str] = {}
    if problem.retry_after is not None:
        headers["retry-after"] = str(problem.retry_after)
    if problem.status == 401:
        headers["www-authenticate"] = 'Bearer realm="voicepipe"'
    return headers


def _logged(error: Exception) -> Problem:
    problem = problem_of(error)
    trace.get_current_span().set_attribute("error.type", problem.code)
    if problem.status == 500:
        log.error("unhandled error", exc_info=error)
        trace.get_current_span().record_exception(error)
    return problem


def _headers(problem: Problem, error: Exception) -> dict[str, str] | None:
    """The problem's headers and the exception's own (a 405's `Allow`)."""
    return headers_of(problem) | dict(getattr(error, "headers", None) or {}) or None


def any_error(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    """The app's handler: what no router's handlers took — a path no route has, a method its
    route has not — in the shape of the API its path belongs to."""
    path = request.scope["path"]
    if path.startswith("/v1/") and not speaks_deepgram(path):
        return openai_error(request, error)
    problem = _logged(error)
    body = body_for(path, problem)
    return Response(body, status_code=problem.status, headers=_headers(problem, error))


def openai_error(_: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    problem = _logged(error)
    code = "invalid_request" if isinstance(error, InvalidRequest) else None
    body = openai_body(problem, code)
    return Response(body, status_code=problem.status, headers=_headers(problem, error))


EXCEPTION_HANDLERS = {
    VoicePipeError: any_error,
    HTTPException: any_error,
    Exception: any_error,
}
OPENAI_EXCEPTION_HANDLERS = {
    VoicePipeError: openai_error,
    HTTPException: openai_error,
    Exception: openai_error,
}
