"""What a conversation tells its client, whatever the protocol renders it as."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from domain.conversation import Item
from domain.errors import VoicePipeError


class SpeechBegan(msgspec.Struct, frozen=True):
    item_id: str
    audio_ms: int


class SpeechEnded(msgspec.Struct, frozen=True):
    """Voice activity (not the client) ended the user's turn."""

    item_id: str
    audio_ms: int


class InputCommitted(msgspec.Struct, frozen=True):
    item_id: str
    previous_item_id: str | None


class ItemAdded(msgspec.Struct, frozen=True):
    item: Item
    previous_item_id: str | None


class ItemDone(msgspec.Struct, frozen=True):
    item: Item
    previous_item_id: str | None


class ItemDeleted(msgspec.Struct, frozen=True):
    item_id: str


class ItemTruncated(msgspec.Struct, frozen=True):
    item_id: str
    audio_end_ms: int


class TranscriptDelta(msgspec.Struct, frozen=True):
    item_id: str
    delta: str


class TranscriptCompleted(msgspec.Struct, frozen=True):
    item_id: str
    transcript: str
    seconds: float
    language: str


class TranscriptFailed(msgspec.Struct, frozen=True):
    item_id: str
    code: str
    message: str


class ReplyStarted(msgspec.Struct, frozen=True):
    response_id: str
    tag: Any  # what the client asked for, handed back to render the answer


class OutputAdded(msgspec.Struct, frozen=True):
    """An answer's output item began: its message, or one of its tool calls."""

    response_id: str
    item: Item
    previous_item_id: str | None
    in_conversation: bool  # False: out of band, not added to the items
    output_index: int


class ReplyText(msgspec.Struct, frozen=True):
    response_id: str
    item_id: str
    delta: str
    spoken: bool  # the transcript of the answer's audio, not a text answer
    output_index: int = 0


class ReplyAudio(msgspec.Struct, frozen=True):
    response_id: str
    item_id: str
    data: bytes  # in the output's encoding
    output_index: int = 0


class CallArguments(msgspec.Struct, frozen=True):
    response_id: str
    item: Item  # the function call
    output_index: int
    delta: str


class OutputDone(msgspec.Struct, frozen=True):
    response_id: str
    item: Item
    previous_item_id: str | None
    in_conversation: bool
    output_index: int


class ReplyDone(msgspec.Struct, frozen=True):
    response_id: str
    outputs: list[Item]
    tag: Any
    status: str  # completed, cancelled, incomplete, failed
    reason: str | None
    code: str | None
    message: str | None
    input_chars: int  # what the chat model read
    output_chars: int  # what it answered (as kept)


class AnswerDropped(msgspec.Struct, frozen=True):
    """An answer begun at a likely end of the user's turn was dropped (never shown): the user
    went on, or said other words. Protocols tell it only to clients that ask."""

    said: str  # the words it answered


class ConversationFailed(msgspec.Struct, frozen=True):
    """Something the client did not ask for at that moment failed (an automatic answer)."""

    error: VoicePipeError


ConversationEvent = (
    SpeechBegan
    | SpeechEnded
    | InputCommitted
    | ItemAdded
    | ItemDone
    | ItemDeleted
    | ItemTruncated
    | TranscriptDelta
    | TranscriptCompleted
    | TranscriptFailed
    | ReplyStarted
    | OutputAdded
    | ReplyText
    | ReplyAudio
    | CallArguments
    | OutputDone
    | ReplyDone
    | AnswerDropped
    | ConversationFailed
)
Tell = Callable[[ConversationEvent], Awaitable[None]]
