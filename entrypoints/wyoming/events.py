"""The Wyoming events a client sends, as typed commands: a field that is missing or of the
wrong type is a coded error naming it, never a crash."""

from __future__ import annotations

import re
from typing import Annotated, Any, get_args

import msgspec
from msgspec import Meta

from domain.errors import InvalidRequest
from entrypoints.wyoming.channel import Frame

Text = Annotated[str, Meta(max_length=100_000)]  # the use cases bound it; this bounds parsing
Name = Annotated[str, Meta(max_length=200)]  # a voice, model or language: short


class Voice(msgspec.Struct, frozen=True):
    name: Name | None = None
    language: Name | None = None


class Describe(msgspec.Struct, frozen=True):
    pass


class Transcribe(msgspec.Struct, frozen=True):
    name: Name | None = None  # a model describe lists
    language: Name | None = None


class AudioStart(msgspec.Struct, frozen=True):
    rate: int
    width: int
    channels: int


class AudioChunk(AudioStart, frozen=True):
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


Command = (Describe | Transcribe | AudioStart | AudioChunk | AudioStop | Synthesize
           | SynthesizeStart | SynthesizeChunk | SynthesizeStop)  # fmt: skip
COMMANDS: tuple[type, ...] = get_args(Command)
# Wyoming names an event by its class in kebab case: AudioStart is "audio-start".
TYPES: dict[str, Any] = {
    re.sub(r"(?<!^)(?=[A-Z])", "-", kind.__name__).lower(): kind for kind in COMMANDS
}


def decode(frame: Frame) -> Command:
    kind = TYPES.get(frame.type)
    if kind is None:
        raise InvalidRequest(f"unsupported event type {frame.type[:60]!r}")
    if frame.problem is not None:
        raise InvalidRequest(f"{frame.type}: {frame.problem}")
    data = {**frame.data, "audio": frame.payload or b""} if kind is AudioChunk else frame.data
    try:
        command: Command = msgspec.convert(data, kind)
    except msgspec.ValidationError as error:
        raise InvalidRequest(f"{frame.type}: {error}") from None
    return command
