"""Who may call what: API keys on HTTP routes, the WebSocket handshake, quotas per key.

With no API_KEYS the service is open (local use): nothing here refuses anything, unless
ANONYMOUS_LIMITS=on puts the anonymous clients under one key's limits.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

import msgspec
import structlog
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from application.access import ANONYMOUS, Credential, Principal
from application.admission import Admission
from domain.errors import VoicePipeError
from entrypoints.errors import body_for, headers_of, problem_of
from entrypoints.settings import Settings

log = structlog.get_logger(__name__)

OPEN_PATHS = ("/health", "/ready", "/live", "/", "/favicon.ico")
OPEN_PREFIXES = ("/schema", "/static/")


class Forbidden(VoicePipeError):
    code = "forbidden_origin"
    status = 403


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return dict(scope["headers"])


def presented_key(scope: Scope) -> str | None:
    """`Authorization: Bearer <key>` (or `Token <key>`, as Deepgram's clients send it) or
    `X-API-Key: <key>`; never a query parameter (logs)."""
    headers = _headers(scope)
    authorization = headers.get(b"authorization", b"").decode("latin-1").strip()
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() in ("bearer", "token"):
        return credentials.strip() or None
    key = headers.get(b"x-api-key", b"").decode("latin-1").strip()
    return key or None


def _is_open(path: str, settings: Settings) -> bool:
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return True
    if path == "/stats":
        return settings.public_stats
    if path == "/metrics":
        return settings.public_metrics
    return False


def guarded(admission: Admission, settings: Settings) -> Any:
    """Middleware factory: HTTP routes other than the open ones need a key and a free slot.

    WebSocket scopes pass through: the connection core checks the handshake's credential.
    """

    def middleware_for(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == ScopeType.HTTP:
                principal = ANONYMOUS
                if not _is_open(scope["path"], settings):
                    try:
                        principal = admission.identify(Credential(key=presented_key(scope)))
                        if not admission.open:
                            structlog.contextvars.bind_contextvars(key_id=principal.key_id)
                        await admission.admit(principal)
                    except VoicePipeError as error:
                        await refuse(scope, send, error)  # inside the request's id and log
                        return
                scope.setdefault("state", {})["principal"] = principal
            await app(scope, receive, send)

        return middleware

    return middleware_for


async def refuse(scope: Scope, send: Send, error: VoicePipeError) -> None:
    """A 401/429 from the key check, in the shape of the route's API (OpenAI's under /v1)."""
    problem = problem_of(error)
    body = body_for(scope["path"], problem)
    headers = [(b"content-type", b"application/json")]
    headers += [(k.encode(), v.encode()) for k, v in headers_of(problem).items()]
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": problem.status,
        "headers": headers,
    }
    await send(start)
    end: HTTPResponseBodyEvent = {
        "type": "http.response.body",
        "body": msgspec.json.encode(body),
        "more_body": False,
    }
    await send(end)


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal: Principal = connection.scope.get("state", {}).get("principal", ANONYMOUS)
    return principal


def origin_allowed(scope: Scope, settings: Settings) -> bool:
    """Browsers send Origin on WebSockets and CORS does not apply: check it ourselves.

    No Origin (a non-browser client) is allowed; with no WS_ALLOWED_ORIGINS, only the page's
    own origin is (the playground served by this service: same scheme, host and port); `*`
    allows any. A same-origin check cannot tell a DNS-rebound name from ours: exposed beyond
    loopback, set WS_ALLOWED_ORIGINS (docs/security.md).
    """
    headers = _headers(scope)
    origin = headers.get(b"origin", b"").decode("latin-1").strip()
    if not origin:
        return True
    allowed = settings.ws_allowed_origins
    if "*" in allowed or origin in allowed:
        return True
    if allowed:
        return False
    host = headers.get(b"host", b"").decode("latin-1").strip().lower()
    page = urlsplit(origin)
    scheme = {"ws": "http", "wss": "https"}.get(str(scope.get("scheme", "ws")), "http")
    return page.scheme.lower() == scheme and page.netloc.lower() == host


def offered_subprotocols(scope: Scope) -> list[str]:
    offered = cast("list[Any]", scope.get("subprotocols") or [])
    return [str(p) for p in offered]
