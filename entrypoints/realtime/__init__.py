"""OpenAI's Realtime API: WebSocket /v1/realtime, and client secrets for browsers."""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec
from litestar import Request, WebSocket, post, websocket

from application.access import REALTIME
from entrypoints.bootstrap import Container
from entrypoints.openai.shapes import OpenAIError
from entrypoints.realtime.admission import SECRET_PREFIX
from entrypoints.realtime.config import new_session, render, updated
from entrypoints.realtime.connection import RealtimeConnection
from entrypoints.security import principal_of
from entrypoints.v1.wire import decode_body

MAX_SECRET_SECONDS = 7200


class SecretRequest(msgspec.Struct, frozen=True):
    expires_after: dict[str, Any] | None = None
    session: dict[str, Any] | None = None


@websocket("/realtime")
async def realtime_socket(socket: WebSocket[Any, Any, Any]) -> None:
    await RealtimeConnection(socket, socket.app.state.container).run()


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
    config = updated(
        new_session("sess_" + uuid.uuid4().hex[:20], kind, session.get("model")),
        session,
        beta=False,
    )
    token = container.access.issue_token(principal_of(request), ttl=seconds, scope=REALTIME)
    expires_at = int(time.time()) + seconds
    return {
        "value": SECRET_PREFIX + token,
        "expires_at": expires_at,
        "session": render(config, beta=False, expires_at=expires_at),
    }
