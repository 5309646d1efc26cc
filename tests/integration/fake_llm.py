"""A fake OpenAI-compatible chat-completions server on loopback: it streams `answer` word by
word as server-sent events, as Ollama, vLLM or OpenAI do, and records what it was asked."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from litestar import Litestar, Request, Response, post
from litestar.response import Stream


class FakeLLM:
    def __init__(self, answer: str = "Sure. It is sunny and warm today.") -> None:
        self.answer = answer
        self.token_delay = 0.0  # seconds between streamed words
        self.fail = False  # answer HTTP 500
        # Seconds between empty-content chunks, sent forever (until the client leaves or the
        # fake stops) instead of the answer: a server that keeps a stream alive, saying nothing.
        self.trickle = 0.0
        self.requests: list[dict[str, Any]] = []
        # Scripted answers, one per request while any are left: {"calls": [{"id", "name",
        # "arguments"}], "text": str}; calls stream first (arguments in pieces), as OpenAI does.
        self.script: list[dict[str, Any]] = []
        app = Litestar(route_handlers=[self._route()], logging_config=None)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> FakeLLM:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def _route(self) -> Any:
        fake = self

        @post("/v1/chat/completions", status_code=200)
        async def completions(request: Request[Any, Any, Any]) -> Response[Any] | Stream:
            body = await request.json()
            fake.requests.append(body)
            if fake.fail:
                return Response({"error": {"message": "model crashed"}}, status_code=500)
            return Stream(fake._chunks(body), media_type="text/event-stream")

        return completions

    async def _chunks(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        if self.trickle:
            yield _event(body, {"role": "assistant", "content": ""}, None)
            while not self.server.should_exit:
                await asyncio.sleep(self.trickle)
                yield _event(body, {"content": ""}, None)
            return
        if self.script:
            async for chunk in self._scripted(body, self.script.pop(0)):
                yield chunk
            return
        words = self.answer.split(" ")
        for index, word in enumerate(words):
            if self.token_delay and index:
                await asyncio.sleep(self.token_delay)
            piece = word if index == 0 else " " + word
            yield _event(body, {"role": "assistant", "content": piece}, None)
        yield _event(body, {}, "stop")
        yield b"data: [DONE]\n\n"

    async def _scripted(self, body: dict[str, Any], answer: dict[str, Any]) -> AsyncIterator[bytes]:
        for index, call in enumerate(answer.get("calls", [])):
            head = {"index": index, "id": call["id"], "type": "function",
                    "function": {"name": call["name"], "arguments": ""}}  # fmt: skip
            yield _event(body, {"role": "assistant", "tool_calls": [head]}, None)
            arguments = call["arguments"]
            for at in range(0, len(arguments), 8):
                piece = {"index": index, "function": {"arguments": arguments[at : at + 8]}}
                yield _event(body, {"tool_calls": [piece]}, None)
                await asyncio.sleep(self.token_delay)
        for index, word in enumerate(answer.get("text", "").split()):
            yield _event(body, {"content": word if index == 0 else " " + word}, None)
        yield _event(body, {}, "tool_calls" if answer.get("calls") else "stop")
        yield b"data: [DONE]\n\n"


def _event(body: dict[str, Any], delta: dict[str, Any], finish: str | None) -> bytes:
    chunk = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"
