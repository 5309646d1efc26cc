"""The WebSocket side of every protocol that speaks one: the channel over Litestar's socket,
the credential a handshake presents, and each route's frame bound, enforced unread."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from typing import Any

import structlog
from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from application.access import Credential
from application.connections import Dialect
from application.ports import Channel
from entrypoints.bootstrap import Container
from entrypoints.security import Forbidden, offered_subprotocols, origin_allowed, presented_key

log = structlog.get_logger(__name__)

TOKEN_PREFIX = "token."  # a one-time token from POST /api/token, as a subprotocol
KEY_SUBPROTOCOL = "openai-insecure-api-key."  # OpenAI's browsers: the key as a subprotocol
KEY_SCHEMES = ("token", "bearer")  # Deepgram's browsers: subprotocols ["token", "<key>"]
SECRET_PREFIX = "ek_"  # OpenAI's prefix for ephemeral client secrets

Frame = str | bytes


class WebSocketChannel:
    """Frames of one WebSocket: text or bytes in and out."""

    def __init__(self, socket: WebSocket[Any, Any, Any]) -> None:
        self.socket = socket

    async def receive(self) -> Frame | None:
        try:
            message: Any = await self.socket.receive()
        except WebSocketDisconnect:
            return None
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        return text if text is not None else bytes(message.get("bytes") or b"")

    async def send(self, frame: Frame) -> None:
        try:
            if isinstance(frame, str):
                await self.socket.send_text(frame)
            else:
                await self.socket.send_bytes(frame)
        except (WebSocketDisconnect, OSError, RuntimeError) as gone:
            raise ConnectionError("the client has left") from gone

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.socket.close(code=code, reason=reason[:120])


def credential_of(scope: Any) -> Credential:
    """A key in the headers (`Authorization: Bearer|Token`, `X-API-Key`), or offered as a
    subprotocol the way each API's browsers do; a one-time token; a Realtime client secret."""
    key = presented_key(scope)
    token = None
    offered = offered_subprotocols(scope)
    for scheme, value in itertools.pairwise(offered):
        if key is None and scheme.lower() in KEY_SCHEMES:
            key = value
    for protocol in offered:
        if protocol.startswith(KEY_SUBPROTOCOL):
            key = key or protocol.removeprefix(KEY_SUBPROTOCOL)
        elif protocol.startswith(TOKEN_PREFIX):
            token = token or protocol.removeprefix(TOKEN_PREFIX)
    secret = None
    for presented in (key, token):
        if presented is not None and presented.startswith(SECRET_PREFIX):
            secret = presented.removeprefix(SECRET_PREFIX)
    if secret is not None:
        return Credential(secret=secret)
    return Credential(key=key, token=token)


def chosen(scope: Any, *preferred: str) -> str | None:
    """Browsers fail the handshake unless one offered subprotocol is echoed back: a preferred
    one, else one that carries no credential (a key or token is echoed only when it is all
    the client offered)."""
    offered = offered_subprotocols(scope)
    lowered = [p.lower() for p in offered]
    for name in preferred:
        if name in lowered:
            return offered[lowered.index(name)]
    plain = [p for p in offered if not p.startswith((KEY_SUBPROTOCOL, TOKEN_PREFIX, SECRET_PREFIX))]
    return plain[0] if plain else (offered[0] if offered else None)


async def serve_socket(
    socket: WebSocket[Any, Any, Any],
    dialect: Dialect[Frame, Frame, Any],
    *,
    subprotocol: str | None,
    headers: dict[str, str] | None = None,
) -> None:
    """Accept, then hand the connection to the connection core until it ends."""
    container: Container = socket.app.state.container
    await socket.accept(subprotocols=subprotocol, headers=headers)
    refusal = None
    if not origin_allowed(socket.scope, container.settings):
        refusal = Forbidden("this page's origin may not open WebSockets here (WS_ALLOWED_ORIGINS)")
    connection_id = uuid.uuid4().hex[:12]
    structlog.contextvars.bind_contextvars(connection_id=connection_id)
    log.info("connection opened", protocol=dialect.name)
    channel: Channel[Frame, Frame] = WebSocketChannel(socket)
    try:
        await container.connections.serve(
            channel,
            dialect,
            credential_of(socket.scope),
            connection_id=connection_id,
            refusal=refusal,
        )
    finally:
        log.info("connection closed", protocol=dialect.name)
        structlog.contextvars.unbind_contextvars("connection_id")


class BoundedWebSockets(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol with a frame bound per route: a bigger frame is refused
    from its header, before a byte of it is read (close 1009)."""

    bounds: dict[str, int] = {}

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        bound = self.bounds.get(str(event.path).partition("?")[0])
        if bound is not None:
            self.conn.max_message_size = bound


def bounded_protocol(bounds: dict[str, int]) -> type[BoundedWebSockets]:
    return type("RouteBoundedWebSockets", (BoundedWebSockets,), {"bounds": dict(bounds)})
