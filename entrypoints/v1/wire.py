"""Wire messages of the v1 API (REST bodies and WebSocket frames) and their decoding."""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import msgspec
import pybase64
from litestar import Request
from litestar.datastructures import FormMultiDict
from msgspec import Meta

from domain.errors import AudioTooLarge, InvalidRequest, VoicePipeError

Body = TypeVar("Body", bound=msgspec.Struct)


class InvalidJson(VoicePipeError):
    code = "invalid_json"


class UnknownMessageType(VoicePipeError):
    code = "unknown_message_type"


class InvalidBase64(VoicePipeError):
    code = "invalid_base64"


class TtsBody(msgspec.Struct, frozen=True):
    text: str
    use_cache: bool = True
    refresh_cache: bool = False
    voice: str | None = None
    format: str = "wav"
    stream: bool = False  # chunked response: audio as each piece is synthesized
    speed: float = 1.0


class SttBody(msgspec.Struct, frozen=True):
    audio_base64: str
    language: str | None = None


class TextMessage(msgspec.Struct, frozen=True, tag="text", tag_field="type"):
    text: str
    use_cache: bool = True
    refresh_cache: bool = False
    voice: str | None = None
    format: str = "wav"
    id: str | None = None
    stream: bool = False  # audio in chunks as each piece is synthesized
    binary: bool = True  # streamed chunks as binary frames; false: base64 in JSON
    speed: float = 1.0  # 0.25 to 4.0, as on REST


class TextDelta(msgspec.Struct, frozen=True, tag="text_delta", tag_field="type"):
    """A piece of text for the stream `id` (opened by its first delta); speech starts at
    each complete sentence."""

    id: str
    text: str
    voice: str | None = None
    use_cache: bool = True
    binary: bool = True


class Flush(msgspec.Struct, frozen=True, tag="flush", tag_field="type"):
    """No more text for stream `id`: speak what is left and end it."""

    id: str


class Cancel(msgspec.Struct, frozen=True, tag="cancel", tag_field="type"):
    id: str


class SttStart(msgspec.Struct, frozen=True, tag="stt_start", tag_field="type"):
    """Open the connection's utterance stream; audio follows as binary frames."""

    id: str | None = None
    encoding: str = "pcm_s16le"
    sample_rate: int = 16_000
    language: Annotated[str, Meta(max_length=35)] | None = None  # None: the model's or detected
    model: Annotated[str, Meta(max_length=200)] | None = None  # None: the one the language needs


class SttEnd(msgspec.Struct, frozen=True, tag="stt_end", tag_field="type"):
    """The speaker is done: end the current utterance now, without waiting for silence."""


class SttStop(msgspec.Struct, frozen=True, tag="stt_stop", tag_field="type"):
    """Close the utterance stream (the current utterance is finished first)."""


class AudioMessage(msgspec.Struct, frozen=True, tag="audio", tag_field="type"):
    audio: str
    language: str | None = None
    id: str | None = None


ClientMessage = (
    TextMessage | AudioMessage | TextDelta | Flush | Cancel | SttStart | SttEnd | SttStop
)


class _Envelope(msgspec.Struct):
    type: str | None = None


MESSAGE_TYPES = (
    "text",
    "audio",
    "text_delta",
    "flush",
    "cancel",
    "stt_start",
    "stt_end",
    "stt_stop",
)
_message_decoder = msgspec.json.Decoder(ClientMessage)
T = TypeVar("T")


def decode_body(data: bytes, body_type: type[Body]) -> Body:
    """Decode a REST JSON body; wrong JSON and wrong shapes become clear 400 errors."""
    if not data.strip():
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        return _decode_json(lambda: msgspec.json.decode(data, type=body_type), "request body")
    except msgspec.ValidationError as error:
        raise InvalidRequest(f"invalid request: {error}") from None


def decode_message(data: str | bytes) -> ClientMessage:
    """Decode one WebSocket text frame into a client message."""
    try:
        message: ClientMessage = _decode_json(lambda: _message_decoder.decode(data), "message")
        return message
    except msgspec.ValidationError as error:
        problem = str(error)
    kind = _message_type(data)
    if kind not in MESSAGE_TYPES:
        kinds = ", ".join(MESSAGE_TYPES)
        raise UnknownMessageType(f"unknown message type {kind!r}; expected one of: {kinds}")
    raise InvalidRequest(f"invalid {kind} message: {problem}")


def _message_type(data: str | bytes) -> str | None:
    try:
        return _decode_json(lambda: msgspec.json.decode(data, type=_Envelope), "message").type
    except msgspec.ValidationError:
        return None


def _decode_json(decode: Callable[[], T], what: str) -> T:
    """Run a msgspec decode; every way the input can be wrong becomes a coded error, except
    a wrong shape (msgspec.ValidationError), which the caller words."""
    try:
        return decode()
    except msgspec.ValidationError:
        raise
    except msgspec.DecodeError:
        raise InvalidJson(f"the {what} is not valid JSON") from None
    except UnicodeError:
        # Invalid UTF-8 inside a JSON string (bytes), or lone surrogates (str).
        raise InvalidJson(f"the {what} is not valid UTF-8 JSON") from None
    except RecursionError:
        # msgspec recurses once per nesting level, also into fields it skips.
        raise InvalidRequest(f"the {what} is nested too deeply") from None


async def read_form(request: Request[Any, Any, Any]) -> FormMultiDict:
    """A multipart (or URL-encoded) form. Litestar decodes every part without a filename as
    text: bytes that are not (a file sent as a plain field) are the caller's mistake, a 400."""
    try:
        return await request.form()
    except (UnicodeDecodeError, LookupError):  # LookupError: a part names an unknown charset
        raise InvalidRequest(
            "a form field is not UTF-8 text; send audio as a file part (with a filename)"
        ) from None


def decode_audio(encoded: str, max_bytes: int) -> bytes:
    """Base64 to bytes, refusing oversized input before spending memory on it."""
    if len(encoded) * 3 // 4 > max_bytes + 2:
        raise AudioTooLarge(
            f"audio has about {len(encoded) * 3 // 4} bytes; the limit is {max_bytes}"
        )
    try:
        return pybase64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBase64("audio is not valid base64") from None
