"""A voice conversation: its items, what was heard of each answer, and what the model reads."""

from __future__ import annotations

from typing import Literal

import msgspec

from domain.errors import InvalidRequest

Role = Literal["system", "user", "assistant"]


class ChatTurn(msgspec.Struct, frozen=True):
    """One message as a chat-completions model reads it."""

    role: Role
    text: str


class SpokenPiece(msgspec.Struct, frozen=True):
    start_ms: float  # where its audio starts in the answer
    text: str


class Item(msgspec.Struct, kw_only=True):
    """A message in the conversation. `pieces` say which text each stretch of audio spoke."""

    id: str
    role: Role
    audio: bool  # spoken (or heard), not typed
    text: str = ""
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
    """The instructions, then the newest items that fit in `max_chars` (oldest dropped)."""
    turns: list[ChatTurn] = []
    budget = max_chars
    for item in reversed(items):
        if not item.text:
            continue
        budget -= len(item.text)
        if budget < 0:
            break
        turns.append(ChatTurn(item.role, item.text))
    turns.reverse()
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
