"""A request cancelled by the shutdown before its answer started gets a retryable 503 in its
API's shape; one already answering is left to end as it was."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from entrypoints.shutdown_answers import ShutdownAnswers


async def _cancelled(path: str, start_first: bool) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    waiting = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if start_first:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        waiting.set()
        await asyncio.sleep(60)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    task = asyncio.create_task(ShutdownAnswers(app)({"type": "http", "path": path}, None, send))
    await waiting.wait()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        sent.append({"type": "cancelled"})
    return sent


@pytest.mark.parametrize(
    ("path", "code_of"),
    [
        ("/api/stt", lambda body: body["code"]),
        ("/v1/audio/transcriptions", lambda body: body["error"]["code"]),
        ("/v1/listen", lambda body: body["err_code"]),
    ],
)
async def test_unanswered_requests_get_503_shutting_down(path: str, code_of: Any) -> None:
    start, body = await _cancelled(path, start_first=False)
    assert start["status"] == 503
    headers = dict(start["headers"])
    assert headers[b"retry-after"] == b"1" and headers[b"connection"] == b"close"
    assert code_of(json.loads(body["body"])).lower() == "shutting_down"


async def test_an_answer_already_started_is_not_replaced() -> None:
    sent = await _cancelled("/api/tts", start_first=True)
    assert [m["type"] for m in sent] == ["http.response.start", "cancelled"]
