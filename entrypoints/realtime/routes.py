"""OpenAI's Realtime API: WebSocket /v1/realtime, and client secrets for browsers."""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec
from litestar import Request, Router, WebSocket, post, websocket

from application.access import REALTIME
from application.listening_session import ListeningLimits
from entrypoints.bootstrap import Container
from entrypoints.errors import OPENAI_EXCEPTION_HANDLERS
from entrypoints.openai.shapes import OpenAIError
from entrypoints.realtime.dialect import RealtimeDialect
from entrypoints.realtime.session import new_session, read, updated
from entrypoints.realtime.shapes import session_shape
from entrypoints.security import principal_of
from entrypoints.v1.wire import decode_body
from entrypoints.websocket import SECRET_PREFIX, chosen, serve_socket

MAX_SECRET_SECONDS = 7200


class SecretRequest(msgspec.Struct, frozen=True):
    expires_after: dict[str, Any] | None = None
    session: dict[str, Any] | None = None


def max_frame_bytes() -> int:
    """An append's base64 audio (4/3 of a listening frame) and its envelope, with room: a
    frame a little over it still gets a coded error."""
    return 2 * (ListeningLimits().max_frame_bytes * 4 // 3)


@websocket("/realtime")
async def realtime_socket(socket: WebSocket[Any, Any, Any]) -> None:
    headers = dict(socket.scope["headers"])
    query = socket.query_params
    dialect = RealtimeDialect(
        socket.app.state.container,
        beta=b"realtime=v1" in headers.get(b"openai-beta", b"").lower(),
        kind="transcription" if query.get("intent") == "transcription" else "realtime",
        model=query.get("model"),
        own_events=frozenset((query.get("voicepipe_events") or "").split(",")),
    )
    await serve_socket(socket, dialect, subprotocol=chosen(socket.scope, "realtime"))


@post("/realtime/client_secrets", status_code=200)
async def client_secrets(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """An ephemeral key (`ek_…`) for a browser: it opens one Realtime connection, once."""
    container: Container = request.app.state.container
    body = decode_body(await request.body() or b"{}", SecretRequest)
    seconds = (body.expires_after or {}).get("seconds", 600)
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        seconds = -1
    if not 10 <= seconds <= MAX_SECRET_SECONDS:
        raise OpenAIError(f"expires_after.seconds must be from 10 to {MAX_SECRET_SECONDS}",
                          param="expires_after.seconds", code="invalid_value")  # fmt: skip
    session = body.session or {}
    kind = session.get("type", "realtime")
    if kind != "realtime" and kind != "transcription":
        raise OpenAIError("session.type must be realtime or transcription",
                          param="session.type", code="invalid_value")  # fmt: skip
    model = session.get("model") if isinstance(session.get("model"), str) else None
    config = updated(
        new_session("sess_" + uuid.uuid4().hex[:20], kind, model), read(session, beta=False)
    )
    token = container.admission.token(principal_of(request), scope=REALTIME, ttl=seconds)
    expires_at = int(time.time()) + seconds
    return {
        "value": SECRET_PREFIX + token,
        "expires_at": expires_at,
        "session": session_shape(config, beta=False, expires_at=expires_at),
    }


realtime_router = Router(
    path="/v1",
    route_handlers=[realtime_socket, client_secrets],
    exception_handlers=OPENAI_EXCEPTION_HANDLERS,  # type: ignore[arg-type]
)
