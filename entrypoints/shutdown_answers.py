"""What a request still unanswered at the end of the draining shutdown gets.

uvicorn cancels the requests that outlast `timeout_graceful_shutdown` and answers each with a
plain-text 500, which says "bug" to clients and balancers. A request cut short by a shutdown is
not a bug and is safe to send again: it gets 503 `shutting_down` with `Retry-After`, in the
shape its API speaks (the v1 body, OpenAI's, Deepgram's).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from entrypoints.errors import Problem, body_for, headers_of

Scope = dict[str, Any]

SHUTTING_DOWN = Problem(
    503, "shutting_down", "this instance is shutting down; send the request again", 1
)


class ShutdownAnswers:
    """ASGI wrapper: a cancelled HTTP request whose answer has not started gets the 503."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except asyncio.CancelledError:
            if started:
                raise
            # The request task is uvicorn's outermost one: nothing above it awaits the
            # cancellation, so answering ends it cleanly (no 500, no stack trace logged).
            await _answer(send, scope.get("path", ""))


async def _answer(send: Any, path: str) -> None:
    body = json.dumps(body_for(path, SHUTTING_DOWN)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *((k.encode(), v.encode()) for k, v in headers_of(SHUTTING_DOWN).items()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
