"""The Realtime API's client events as one typed union (GA names; the beta's map onto them).
A frame that is not one of them is a coded error naming what is wrong."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from domain.conversation import Item
from domain.errors import InvalidRequest
from domain.tools import Tool, ToolChoice
from entrypoints.realtime.session import MAX_INSTRUCTIONS, Tokens

MAX_ITEM_CHARS = 20_000
Text = Literal["input_text", "text", "output_text"]


class Event(msgspec.Struct, tag_field="type", kw_only=True):
    event_id: str | None = None


class SessionUpdate(Event, tag="session.update"):
    session: dict[str, Any]


class TranscriptionSessionUpdate(SessionUpdate, tag="transcription_session.update"):
    """The beta's name for a transcription session's update."""


class Append(Event, tag="input_audio_buffer.append"):
    audio: str


class Commit(Event, tag="input_audio_buffer.commit"):
    pass


class Clear(Event, tag="input_audio_buffer.clear"):
    pass


class TextPart(msgspec.Struct, frozen=True):
    type: Text
    text: Annotated[str, Meta(max_length=MAX_ITEM_CHARS)]


Id = Annotated[str, Meta(min_length=1, max_length=64)]
ItemText = Annotated[str, Meta(max_length=MAX_ITEM_CHARS)]


class ItemIn(msgspec.Struct, frozen=True):
    """A message (`role`, `content`), a function call (`call_id`, `name`, `arguments`) or a
    call's output (`call_id`, `output`)."""

    type: Literal["message", "function_call", "function_call_output"] = "message"
    role: Literal["user", "assistant", "system"] | None = None
    content: Annotated[list[TextPart], Meta(min_length=1, max_length=16)] | None = None
    id: Id | None = None
    call_id: Id | None = None
    name: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    arguments: ItemText | None = None
    output: ItemText | None = None

    def made(self) -> Item:
        item_id = self.id or "item_" + uuid.uuid4().hex[:20]
        if self.type == "message":
            if self.role is None or self.content is None:
                raise InvalidRequest("a message item needs `role` and `content`", "item")
            text = "\n".join(part.text for part in self.content)
            return Item(id=item_id, role=self.role, audio=False, text=text)
        if self.call_id is None:
            raise InvalidRequest(f"a {self.type} item needs `call_id`", "item.call_id")
        if self.type == "function_call":
            if self.name is None:
                raise InvalidRequest("a function_call item needs `name`", "item.name")
            return Item(
                id=item_id,
                role="assistant",
                audio=False,
                type="function_call",
                call_id=self.call_id,
                name=self.name,
                text=self.arguments or "",
            )
        return Item(
            id=item_id,
            role="user",
            audio=False,
            type="function_call_output",
            call_id=self.call_id,
            text=self.output or "",
        )


class ItemCreate(Event, tag="conversation.item.create"):
    item: ItemIn
    previous_item_id: str | None = None


class ItemDelete(Event, tag="conversation.item.delete"):
    item_id: str


class ItemRetrieve(Event, tag="conversation.item.retrieve"):
    item_id: str


class ItemTruncate(Event, tag="conversation.item.truncate"):
    item_id: str
    audio_end_ms: int
    content_index: int = 0


class VoiceOut(msgspec.Struct, frozen=True):
    voice: Annotated[str, Meta(max_length=100)] | None = None


class AudioOut(msgspec.Struct, frozen=True):
    output: VoiceOut = VoiceOut()


Metadata = Annotated[
    dict[Annotated[str, Meta(max_length=64)], Annotated[str, Meta(max_length=512)]],
    Meta(max_length=16),
]  # as OpenAI bounds it


class ResponseIn(msgspec.Struct, frozen=True):
    instructions: Annotated[str, Meta(max_length=MAX_INSTRUCTIONS)] | None = None
    output_modalities: list[Literal["audio", "text"]] | None = None
    modalities: list[Literal["audio", "text"]] | None = None  # the beta's name
    max_output_tokens: Tokens | UnsetType = UNSET
    max_response_output_tokens: Tokens | UnsetType = UNSET  # the beta's name
    audio: AudioOut = AudioOut()
    voice: Annotated[str, Meta(max_length=100)] | None = None  # the beta's place
    metadata: Metadata | None = None
    conversation: str = "auto"  # "none": out of band
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None


class ResponseCreate(Event, tag="response.create"):
    response: ResponseIn | None = None


class ResponseCancel(Event, tag="response.cancel"):
    response_id: str | None = None


class OutputAudioClear(Event, tag="output_audio_buffer.clear"):
    pass


ClientEvent = (
    SessionUpdate
    | TranscriptionSessionUpdate
    | Append
    | Commit
    | Clear
    | ItemCreate
    | ItemDelete
    | ItemRetrieve
    | ItemTruncate
    | ResponseCreate
    | ResponseCancel
    | OutputAudioClear
)
_decoder = msgspec.json.Decoder(ClientEvent)
_TAGS = {cls.__struct_config__.tag for cls in ClientEvent.__args__}


class _Envelope(msgspec.Struct):
    type: Any = None
    event_id: Any = None


def decode(frame: str | bytes) -> ClientEvent:
    if isinstance(frame, bytes):
        raise InvalidRequest("the Realtime API takes JSON text events, not binary frames")
    try:
        event: ClientEvent = _decoder.decode(frame)
    except msgspec.ValidationError as error:
        raise _invalid(frame, str(error)) from None
    except (msgspec.DecodeError, UnicodeError, RecursionError):
        raise InvalidRequest("the event is not valid JSON (or nests too deeply)") from None
    return event


def event_id_of(frame: str | bytes) -> str | None:
    """The client's `event_id` of a frame that did not decode, for its error."""
    try:
        found = msgspec.json.decode(frame, type=_Envelope).event_id
    except (msgspec.DecodeError, UnicodeError, RecursionError):
        return None
    return found if isinstance(found, str) else None


def _invalid(frame: str, problem: str) -> InvalidRequest:
    try:
        kind = msgspec.json.decode(frame, type=_Envelope).type
    except (msgspec.DecodeError, RecursionError):
        kind = None
    if not isinstance(kind, str) or kind not in _TAGS:
        if not isinstance(kind, str):
            return InvalidRequest("an event is a JSON object with a string `type`")
        return InvalidRequest(f"unknown or unsupported event type: {kind[:100]!r}")
    if kind == "conversation.item.create" and re.search(r"content\[\d+\]\.type", problem):
        return InvalidRequest(
            "item content must be text (input_text) with a string `text`; send audio with "
            "input_audio_buffer.append"
        )
    return InvalidRequest(f"invalid {kind}: {problem}")
