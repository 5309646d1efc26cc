"""The Wyoming events a client sends, as typed commands: a field that is missing or of the
wrong type is a coded error naming it, never a crash."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from domain.errors import InvalidRequest
from entrypoints.wyoming.channel import Frame

Text = Annotated[str, Meta(max_length=100_000)]  # the use cases bound it; this bounds parsing


class Voice(msgspec.Struct, frozen=True):
    name: str | None = None


class Describe(msgspec.Struct, frozen=True):
    pass


class Transcribe(msgspec.Struct, frozen=True):
    language: str | None = None


class AudioStart(msgspec.Struct, frozen=True):
    rate: int
    width: int
    channels: int


class AudioChunk(msgspec.Struct, frozen=True):
    rate: int
    width: int
    channels: int
    audio: bytes = b""


class AudioStop(msgspec.Struct, frozen=True):
    pass


class Synthesize(msgspec.Struct, frozen=True):
    text: Text
    voice: Voice | None = None


class SynthesizeStart(msgspec.Struct, frozen=True):
    voice: Voice | None = None


class SynthesizeChunk(msgspec.Struct, frozen=True):
    text: Text


class SynthesizeStop(msgspec.Struct, frozen=True):
    pass


Command = (
    Describe
    | Transcribe
    | AudioStart
    | AudioChunk
    | AudioStop
    | Synthesize
    | SynthesizeStart
    | SynthesizeChunk
    | SynthesizeStop
)
TYPES: dict[str, type[Command]] = {
    "describe": Describe,
    "transcribe": Transcribe,
    "audio-start": AudioStart,
    "audio-chunk": AudioChunk,
    "audio-stop": AudioStop,
    "synthesize": Synthesize,
    "synthesize-start": SynthesizeStart,
    "synthesize-chunk": SynthesizeChunk,
    "synthesize-stop": SynthesizeStop,
}


def decode(frame: Frame) -> Command:
    kind = TYPES.get(frame.type)
    if kind is None:
        raise InvalidRequest(f"unsupported event type {frame.type[:60]!r}")
    if frame.problem is not None:
        raise InvalidRequest(f"{frame.type}: {frame.problem}")
    data = frame.data
    if kind is AudioChunk:
        data = {**data, "audio": frame.payload or b""}
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as error:
        raise InvalidRequest(f"{frame.type}: {error}") from None
