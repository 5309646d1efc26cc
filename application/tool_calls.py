"""A chat model's tool calls as they stream: each call begins, takes its arguments piece by
piece, and is complete when the model moves on (to text, another call, or the end)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from domain.tools import ToolCallDelta


class ReplyCall(msgspec.Struct, frozen=True):
    """The model began a tool call (`index` tells the calls of one answer apart)."""

    index: int
    call_id: str
    name: str


class ReplyCallArguments(msgspec.Struct, frozen=True):
    index: int
    delta: str


class ReplyCallDone(msgspec.Struct, frozen=True):
    index: int


MAX_CALLS = 32  # in one answer: each is an item the conversation and the client keep


class TooManyCalls(Exception):
    pass


class ToolCalls:
    """Turns the model's call deltas into begin / arguments / done, one call open at a time.
    A delta for a call already done is dropped: what the client saw complete stays so. A
    model past MAX_CALLS calls in one answer raises TooManyCalls (the answer stops there)."""

    def __init__(self, put: Callable[[Any], None]) -> None:
        self._put = put
        self._open: int | None = None
        self._done: set[int] = set()
        self.chars = 0  # arguments streamed, for the answer's bound

    def add(self, delta: ToolCallDelta) -> None:
        if delta.index in self._done:
            return
        if delta.index != self._open:
            self.close()
            if len(self._done) >= MAX_CALLS:
                raise TooManyCalls(f"an answer makes at most {MAX_CALLS} tool calls")
            self._open = delta.index
            call_id = delta.call_id or "call_" + uuid.uuid4().hex[:20]
            self._put(ReplyCall(delta.index, call_id, delta.name or ""))
        if delta.arguments:
            self.chars += len(delta.arguments)
            self._put(ReplyCallArguments(delta.index, delta.arguments))

    def close(self) -> None:
        if self._open is not None:
            self._done.add(self._open)
            self._put(ReplyCallDone(self._open))
            self._open = None
