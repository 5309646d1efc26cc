"""The Realtime handshake: Origin, then an API key or a client secret (header, or the
subprotocol browsers use), then the connection limits. A refusal is one `error` event and a
close with 1008."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import msgspec
import structlog
from litestar import WebSocket

from application.access import ANONYMOUS, SCOPES, Access, Principal
from domain.errors import VoicePipeError
from entrypoints.bootstrap import Container
from entrypoints.realtime.shapes import error_body
from entrypoints.security import (
    TOKEN_PREFIX,
    Forbidden,
    TooManyConnections,
    offered_subprotocols,
    origin_allowed,
    presented_key,
)

log = structlog.get_logger(__name__)

SECRET_PREFIX = "ek_"  # OpenAI's prefix for ephemeral client secrets
KEY_SUBPROTOCOL = "openai-insecure-api-key."  # browsers: the key (or secret) as a subprotocol


def chosen(scope: Any) -> str | None:
    offered = offered_subprotocols(scope)
    if not offered:
        return None
    return "realtime" if "realtime" in offered else offered[0]


async def principal_of(access: Access, scope: Any) -> Principal:
    if access.open:
        return ANONYMOUS
    presented = presented_key(scope)
    for protocol in offered_subprotocols(scope):
        if protocol.startswith(KEY_SUBPROTOCOL):
            presented = presented or protocol.removeprefix(KEY_SUBPROTOCOL)
        elif protocol.startswith(TOKEN_PREFIX):
            presented = presented or SECRET_PREFIX + protocol.removeprefix(TOKEN_PREFIX)
    if presented is not None and presented.startswith(SECRET_PREFIX):
        return await access.redeem(presented.removeprefix(SECRET_PREFIX), SCOPES)
    return access.authenticate(presented)


async def admit(
    socket: WebSocket[Any, Any, Any], container: Container, live: set[Any], connection: Any
) -> Principal | None:
    scope, settings = socket.scope, container.settings
    await socket.accept(subprotocols=chosen(scope))
    try:
        if not origin_allowed(scope, settings):
            raise Forbidden("this page's origin may not open WebSockets here (WS_ALLOWED_ORIGINS)")
        principal = await principal_of(container.access, scope)
        if len(live) >= settings.ws_max_connections:
            raise TooManyConnections("the server has too many open connections; retry shortly")
        live.add(connection)  # taken before the next await: no check-then-add race
        await container.access.connect(principal, connection.id)
    except VoicePipeError as error:
        live.discard(connection)
        log.info("realtime refused", code=error.code)
        event = {"event_id": "event_" + uuid.uuid4().hex[:20], "type": "error"}
        with contextlib.suppress(Exception):
            await socket.send_text(
                msgspec.json.encode(event | {"error": error_body(error)}).decode()
            )
            await socket.close(code=1008, reason=error.code)
        return None
    return principal
