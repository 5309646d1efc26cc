"""Properties of the wire decoders: any input is a message or a coded error, never a crash."""

from __future__ import annotations

import base64
import json
from typing import Any, get_args

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domain.errors import AudioTooLarge, VoicePipeError
from entrypoints.v1.wire import (
    MESSAGE_TYPES,
    ClientMessage,
    InvalidBase64,
    SttBody,
    TtsBody,
    decode_audio,
    decode_body,
    decode_message,
)

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Every client message type, read from the union: a new one is covered without a change here.
MESSAGE_CLASSES: tuple[type[msgspec.Struct], ...] = get_args(ClientMessage)
# The codes decode_message documents (docs/api.md); nothing else may come out of it.
MESSAGE_ERROR_CODES = {"invalid_json", "invalid_request", "unknown_message_type"}
BODY_ERROR_CODES = {"invalid_json", "invalid_request"}
AUDIO_ERROR_CODES = {"invalid_base64", "audio_too_large"}

# Any code point, lone surrogates included (st.text() leaves those out by default).
any_text = st.text(st.characters(exclude_categories=()))
# msgspec decodes integers in the int64/uint64 range.
wire_int = st.integers(min_value=-(2**63), max_value=2**64 - 1)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from(MESSAGE_TYPES)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
# What a conforming client may send: no NaN or Infinity, which JSON does not have.
strict_json_values = st.recursive(
    st.none()
    | st.booleans()
    | wire_int
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
# Field names of the real messages, so random values land on real fields too.
FIELD_NAMES = sorted({field for cls in MESSAGE_CLASSES for field in cls.__struct_fields__})


# Valid messages of every type, as a client builds them: every field, read from the struct
# (a new field is covered without a change here, a new kind of field type fails loudly).


def values_of(kind: msgspec.inspect.Type) -> st.SearchStrategy[Any]:
    """Values a field of this type accepts, within the bounds the struct declares."""
    if isinstance(kind, msgspec.inspect.StrType) and kind.pattern is None:
        return st.text(min_size=kind.min_length or 0, max_size=kind.max_length)
    if isinstance(kind, msgspec.inspect.BoolType):
        return st.booleans()
    if isinstance(kind, msgspec.inspect.IntType) and kind.multiple_of is None:
        low = kind.ge if kind.ge is not None else -(2**63) if kind.gt is None else kind.gt + 1
        high = kind.le if kind.le is not None else 2**64 - 1 if kind.lt is None else kind.lt - 1
        return st.integers(min_value=max(low, -(2**63)), max_value=min(high, 2**64 - 1))
    if isinstance(kind, msgspec.inspect.FloatType) and kind.multiple_of is None:
        return st.floats(
            min_value=kind.gt if kind.gt is not None else kind.ge,
            max_value=kind.lt if kind.lt is not None else kind.le,
            exclude_min=kind.gt is not None,
            exclude_max=kind.lt is not None,
            allow_nan=False,  # JSON has no NaN or Infinity
            allow_infinity=False,
        )
    if isinstance(kind, msgspec.inspect.NoneType):
        return st.none()
    if isinstance(kind, msgspec.inspect.UnionType):
        return st.one_of(*(values_of(member) for member in kind.types))
    raise NotImplementedError(f"no strategy for a field of type {kind}")


def messages_of(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    return st.builds(cls, **{field.name: values_of(field.type) for field in info.fields})


MESSAGE_STRATEGIES = {cls: messages_of(cls) for cls in MESSAGE_CLASSES}
client_messages: st.SearchStrategy[ClientMessage] = st.one_of(*MESSAGE_STRATEGIES.values())


@st.composite
def message_like(draw: st.DrawFn) -> dict[str, Any]:
    """A dict shaped like a client message: a real (or junk) type, real and random fields."""
    message: dict[str, Any] = draw(
        st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(), json_values, max_size=6)
    )
    if draw(st.booleans()):
        message["type"] = draw(st.sampled_from(MESSAGE_TYPES) | json_values)
    return message


@st.composite
def mutated(draw: st.DrawFn, documents: st.SearchStrategy[Any]) -> bytes:
    """Valid JSON with a few bytes overwritten: invalid UTF-8 inside strings, broken syntax."""
    data = bytearray(json.dumps(draw(documents), ensure_ascii=False).encode())
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=3))
    return bytes(data)


def encoded(value: Any, how: str) -> str | bytes:
    """JSON text as different encoders write it: ASCII-escaped, raw UTF-8, compact bytes."""
    if how == "ascii":
        return json.dumps(value)
    if how == "unicode":
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


def frame_or_coded_error(data: str | bytes) -> ClientMessage | None:
    try:
        message = decode_message(data)
    except VoicePipeError as error:
        assert type(error) is not VoicePipeError  # a specific subclass, with its own code
        assert isinstance(error.code, str) and error.code in MESSAGE_ERROR_CODES
        assert isinstance(error.message, str) and error.message.strip()
        return None
    assert isinstance(message, MESSAGE_CLASSES)
    return message


# (a) Any input decodes to a message or a coded VoicePipeError.


@PROPERTY
@given(any_text)
@example("")
@example("\ud800")
@example('{"type": "text", "text": "\ud800"}')
@example('{"type": "text", "text": "\\ud800"}')
@example('{"type": "stt_start", "sample_rate": 1' + "0" * 40 + "}")
def test_any_text_is_a_message_or_a_coded_error(data: str) -> None:
    frame_or_coded_error(data)


@PROPERTY
@given(st.binary() | mutated(message_like()) | mutated(client_messages.map(msgspec.to_builtins)))
@example(b"\xff\xfe")
@example(b'"\xff"')
@example(b'{"type": "text", "text": "\xff"}')
@example(b'{"type": "te\xffxt", "text": "hi"}')
@example(b'{"\xff": 1}')
@example(b'{"type": "text", "text": 5, "x": "\xff"}')
def test_any_bytes_are_a_message_or_a_coded_error(data: bytes) -> None:
    frame_or_coded_error(data)


@PROPERTY
@given(json_values, st.sampled_from(["ascii", "unicode", "bytes"]))
def test_any_json_is_a_message_or_a_coded_error(value: Any, how: str) -> None:
    frame_or_coded_error(encoded(value, how))


@PROPERTY
@given(message_like(), st.sampled_from(["ascii", "unicode", "bytes"]))
def test_message_shaped_json_is_a_message_or_a_coded_error(message: Any, how: str) -> None:
    decoded = frame_or_coded_error(encoded(message, how))
    if decoded is not None:
        assert message["type"] == decoded.__struct_config__.tag


@PROPERTY
@given(
    st.sampled_from(MESSAGE_TYPES) | st.text(max_size=8),
    st.integers(min_value=0, max_value=20_000),
    st.sampled_from(["[", '{"a":', "[1,"]),
    st.booleans(),
)
@example("text", 100_000, "[", True)
@example("text", 100_000, '{"a":', False)
@example("video", 100_000, "[", True)
def test_deep_nesting_is_a_coded_error(kind: str, depth: int, opener: str, first: bool) -> None:
    """msgspec recurses once per level, also into fields it skips: depth must not crash it."""
    closer = {"[": "]", '{"a":': "}", "[1,": "]"}[opener]
    deep = opener * depth + "0" + closer * depth
    fields = [f'"type": {json.dumps(kind)}', '"text": "hi"', '"id": "x"', f'"junk": {deep}']
    if first:
        fields.reverse()
    frame_or_coded_error("{" + ", ".join(fields) + "}")
    frame_or_coded_error(deep)


# (b) Valid messages round-trip through JSON.


def as_plain_json(message: ClientMessage) -> dict[str, Any]:
    """The message as a client library would build it: a plain dict with its `type`."""
    plain: dict[str, Any] = msgspec.to_builtins(message)
    assert plain["type"] == message.__struct_config__.tag
    return plain


def test_the_strategies_cover_every_message_type() -> None:
    assert set(MESSAGE_STRATEGIES) == set(MESSAGE_CLASSES) == set(get_args(ClientMessage))
    assert {cls.__struct_config__.tag for cls in MESSAGE_CLASSES} == set(MESSAGE_TYPES)


@PROPERTY
@given(client_messages, st.sampled_from(["ascii", "unicode", "bytes", "msgspec"]))
def test_valid_messages_round_trip(message: ClientMessage, how: str) -> None:
    data = (
        msgspec.json.encode(message) if how == "msgspec" else encoded(as_plain_json(message), how)
    )
    assert decode_message(data) == message


@PROPERTY
@given(
    client_messages,
    st.dictionaries(
        st.text().filter(lambda k: k not in FIELD_NAMES and k != "type"),
        strict_json_values,
        max_size=3,
    ),
)
def test_unknown_fields_are_ignored(message: ClientMessage, extra: dict[str, Any]) -> None:
    """New fields may be added to any message (docs/api.md): old servers skip them."""
    plain = {**extra, **as_plain_json(message)}
    assert decode_message(json.dumps(plain)) == message


# (c) Audio and REST bodies.


@PROPERTY
@given(any_text, st.integers(min_value=0, max_value=1 << 20))
@example("\ud800", 10)
@example("AAA=\n", 10)
@example("ＡＡＡＡ", 10)  # fullwidth letters: not base64 alphabet
def test_any_audio_string_is_bytes_or_a_coded_error(encoded_audio: str, max_bytes: int) -> None:
    try:
        audio = decode_audio(encoded_audio, max_bytes)
    except VoicePipeError as error:
        assert isinstance(error, InvalidBase64 | AudioTooLarge)
        assert error.code in AUDIO_ERROR_CODES and error.message.strip()
        return
    assert isinstance(audio, bytes)
    assert len(audio) <= max_bytes + 2


@PROPERTY
@given(st.binary(max_size=3000), st.integers(min_value=0, max_value=4000))
def test_base64_audio_round_trips_within_the_limit(audio: bytes, max_bytes: int) -> None:
    """The size check counts base64 characters, which know the size only to 2 bytes."""
    text = base64.b64encode(audio).decode("ascii")
    if len(audio) <= max_bytes:
        assert decode_audio(text, max_bytes) == audio
    elif len(audio) > max_bytes + 2:
        with pytest.raises(AudioTooLarge):
            decode_audio(text, max_bytes)


@PROPERTY
@given(
    st.binary()
    | json_values.map(lambda v: json.dumps(v).encode())
    | message_like().map(lambda v: json.dumps(v).encode())
    | mutated(st.fixed_dictionaries({"text": st.text(), "audio_base64": st.text()}))
    | mutated(message_like()),
    st.sampled_from([TtsBody, SttBody]),
)
@example(b'{"text": "\xff"}', TtsBody)
@example(b'{"\xff": 1}', TtsBody)
@example(b'{"audio_base64": "", "x": "\xff"}', SttBody)
@example(b"[" * 100_000, TtsBody)
@example(b'{"text": "hi", "x": ' + b"[" * 100_000 + b"0" + b"]" * 100_000 + b"}", TtsBody)
@example(b'{"audio_base64": "", "x": ' + b'{"a":' * 100_000 + b"0" + b"}" * 100_000 + b"}", SttBody)
def test_any_body_is_a_body_or_a_coded_error(data: bytes, body_type: type[msgspec.Struct]) -> None:
    try:
        body = decode_body(data, body_type)
    except VoicePipeError as error:
        assert error.code in BODY_ERROR_CODES and error.message.strip()
        return
    assert isinstance(body, body_type)
