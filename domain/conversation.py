"""A voice conversation: its items, what was heard of each answer, and what the model reads."""

from __future__ import annotations

from typing import Literal

import msgspec

from domain.errors import InvalidRequest
from domain.tools import ToolCall

Role = Literal["system", "user", "assistant"]
Kind = Literal["message", "function_call", "function_call_output"]


class ChatTurn(msgspec.Struct, frozen=True):
    """One message as a chat-completions model reads it: `calls` are an assistant's tool
    calls; a `tool` turn is a call's output, for `call_id`."""

    role: Literal["system", "user", "assistant", "tool"]
    text: str
    calls: tuple[ToolCall, ...] = ()
    call_id: str | None = None


class SpokenPiece(msgspec.Struct, frozen=True):
    start_ms: float  # where its audio starts in the answer
    text: str


class Item(msgspec.Struct, kw_only=True):
    """A message in the conversation, or a tool call (`text` is its arguments) or a call's
    output (`text` is the output): text either way, so the bounds count tool items too.
    `pieces` say which text each stretch of audio spoke."""

    id: str
    role: Role
    audio: bool  # spoken (or heard), not typed
    text: str = ""
    type: Kind = "message"
    call_id: str | None = None
    name: str | None = None  # the tool called
    status: Literal["in_progress", "completed", "incomplete"] = "completed"
    pieces: list[SpokenPiece] = msgspec.field(default_factory=list)
    audio_ms: float = 0.0

    def truncate(self, audio_end_ms: float) -> None:
        """Keep only what was heard: the pieces that had started by `audio_end_ms`."""
        self.pieces = [p for p in self.pieces if p.start_ms < audio_end_ms]
        self.text = " ".join(p.text for p in self.pieces)
        self.audio_ms = min(self.audio_ms, audio_end_ms)
        self.status = "incomplete"


def history(items: list[Item], instructions: str, max_chars: int) -> list[ChatTurn]:
    """The instructions, then the newest items that fit in `max_chars` (oldest dropped).
    A tool call goes with its output, right after it, or not at all: chat-completions servers
    refuse a call left unanswered and an output without its call."""
    kept: list[Item] = []
    budget = max_chars
    for item in reversed(items):
        if not item.text and item.type == "message":
            continue
        budget -= len(item.text)
        if budget < 0:
            break
        kept.append(item)
    kept.reverse()
    outputs = {i.call_id: i.text for i in kept if i.type == "function_call_output"}
    turns: list[ChatTurn] = []
    for item in kept:
        if item.type == "message":
            turns.append(ChatTurn(item.role, item.text))
        elif item.type == "function_call" and item.call_id in outputs:
            call = ToolCall(item.call_id or "", item.name or "", item.text)
            turns.append(ChatTurn("assistant", "", calls=(call,)))
            turns.append(ChatTurn("tool", outputs.pop(item.call_id), call_id=item.call_id))
    return [ChatTurn("system", instructions), *turns] if instructions else turns


class Conversation:
    """The items of one session, in order, bounded in count and in characters: past either
    bound the oldest items go (as a model's context drops them), so a session holds at most
    `max_items` items and `max_chars` characters of text, whatever its protocol. What went
    waits in `dropped` until the session says so."""

    def __init__(self, max_items: int = 200, max_chars: int = 200_000) -> None:
        self.items: dict[str, Item] = {}
        self.max_items = max_items
        self.max_chars = max_chars
        self.dropped: list[str] = []

    @property
    def chars(self) -> int:
        return sum(len(item.text) for item in self.items.values())

    def add(self, item: Item, previous_item_id: str | None = None) -> str | None:
        """Appends `item` (or puts it after `previous_item_id`, "root" for first); returns the
        id of the item before it."""
        if item.id in self.items:
            raise InvalidRequest(f"an item with id {item.id!r} already exists")
        if len(item.text) > self.max_chars:
            raise InvalidRequest(f"an item's text is limited to {self.max_chars} characters")
        self._check_call(item)
        order = list(self.items.values())
        at = len(order)
        if previous_item_id == "root":
            at = 0
        elif previous_item_id is not None:
            at = [i.id for i in order].index(self.get(previous_item_id).id) + 1
        order.insert(at, item)
        self.items = {i.id: i for i in order}
        self.bound(keep=item.id)
        return order[at - 1].id if at > 0 else None

    def bound(self, keep: str | None = None) -> list[str]:
        """Drop the oldest items (never `keep`) until both bounds hold; their ids."""
        dropped: list[str] = []
        total = self.chars
        for item in list(self.items.values()):
            if len(self.items) <= self.max_items and total <= self.max_chars:
                break
            if item.id == keep:
                continue
            del self.items[item.id]
            total -= len(item.text)
            dropped.append(item.id)
        self.dropped += dropped
        return dropped

    def has_call(self, call_id: str | None) -> bool:
        return any(i.call_id == call_id for i in self.items.values() if i.type == "function_call")

    def _check_call(self, item: Item) -> None:
        """An output answers a call in the conversation; a call id is used by one call."""
        if item.type == "message":
            return
        known = self.has_call(item.call_id)
        if item.type == "function_call_output" and not known:
            raise InvalidRequest(
                f"Tool call ID {item.call_id!r} not found in conversation", param="item.call_id"
            )
        if item.type == "function_call" and known:
            raise InvalidRequest(
                f"a function call with call_id {item.call_id!r} already exists",
                param="item.call_id",
            )

    def get(self, item_id: str) -> Item:
        item = self.items.get(item_id)
        if item is None:
            raise InvalidRequest(f"no item with id {item_id!r} in this conversation")
        return item

    def delete(self, item_id: str) -> None:
        del self.items[self.get(item_id).id]

    def last_id(self) -> str | None:
        return next(reversed(self.items), None)

    def turns(self, instructions: str, max_chars: int) -> list[ChatTurn]:
        return history(list(self.items.values()), instructions, max_chars)
