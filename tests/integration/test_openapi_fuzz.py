"""Fuzzing the running service through its OpenAPI schema: no request gets a server error.

Schemathesis generates the requests from the schema the service serves at
/schema/openapi.json. That schema lists every operation but none of their request bodies (the
handlers read and decode the body themselves), so on its own it yields one empty request per
operation. `with_request_bodies` adds the bodies of docs/api.md to it, and each operation then
gets bodies that fit (positive mode) and bodies that break the schema (negative mode).

A second fuzz sends raw requests that no schema describes: bytes that are not JSON, invalid
UTF-8 inside JSON strings, deep nesting, multipart forms with a file where text belongs, odd
content types.

Checks: no 5xx but the documented `503 busy`; every 4xx is JSON with the documented error
shape; response headers, content types and bodies as the served schema documents them, except
where that schema is known to be wrong (SCHEMA_GAPS).
"""

from __future__ import annotations

import copy
import io
import json
import math
import struct
import wave
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode, Response
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
)
from schemathesis.core.transport import response_content_type
from schemathesis.specs.openapi.schemas import OpenApiSchema

from entrypoints.openai.shapes import TRANSCRIPT_FORMATS
from entrypoints.openai.speech import OPENAI_VOICES, SPEECH_FORMATS
from entrypoints.v1.wire import SttBody, TtsBody
from tests.integration.conftest import RunningServer

# Every operation the served schema lists. A new one fails test_every_operation_is_fuzzed
# until it is added here (and to request_bodies, if it takes a body).
OPERATIONS = (
    "POST /api/tts",
    "POST /api/stt",
    "POST /api/token",
    "GET /health",
    "GET /live",
    "GET /ready",
    "GET /stats",
    "POST /v1/audio/speech",
    "POST /v1/audio/transcriptions",
    "POST /v1/audio/translations",
    "GET /v1/models",
    "GET /v1/usage",
    "POST /v1/realtime/client_secrets",
    "POST /v1/listen",
    "POST /v1/speak",
)
POST_PATHS = [label.split(" ", 1)[1] for label in OPERATIONS if label.startswith("POST ")]
# Where the served schema documents a 200 response unlike the one the service sends (the
# changes needed are in the handlers' decorators): these checks are left out there.
SCHEMA_GAPS = {
    # `SpeechView | Stream` becomes `oneOf: [SpeechView, {}]`, which every SpeechView matches
    # twice; `"stream": true` answers audio/wav or audio/L16, documented as application/json.
    "POST /api/tts": (content_type_conformance, response_schema_conformance),
    # Audio in the requested format (audio/mpeg, audio/ogg, ...), documented as JSON.
    "POST /v1/audio/speech": (content_type_conformance,),
    # text/plain, text/vtt or text/event-stream by response_format and stream, documented as
    # JSON.
    "POST /v1/audio/transcriptions": (content_type_conformance,),
    "POST /v1/audio/translations": (content_type_conformance,),
    # Deepgram's: the audio bytes (audio/wav, audio/mpeg, ...), documented as JSON.
    "POST /v1/speak": (content_type_conformance, response_schema_conformance),
}
CHECKS = (
    not_a_server_error,
    response_headers_conformance,
    content_type_conformance,
    response_schema_conformance,
)
SCHEMA_EXAMPLES = 30  # per operation and generation mode
RAW_EXAMPLES = 60  # per POST operation
# Not the service's limit (MAX_TEXT_CHARS, 5000): it keeps each synthesis short in the fuzz.
FUZZ_TEXT_CHARS = 40
AUDIO_FORMATS = ["wav", "mp3", "opus", "aac", "flac", "pcm"]


def fuzz_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,  # the same requests on every run: a failure reproduces
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


# The schema the service serves, with the request bodies of docs/api.md.


def _json_schema(body: type[msgspec.Struct]) -> dict[str, Any]:
    (_,), components = msgspec.json.schema_components([body])
    schema: dict[str, Any] = components[body.__name__]
    return schema


def _multipart(properties: dict[str, Any]) -> dict[str, Any]:
    file = {"type": "string", "format": "binary"}
    schema = {"type": "object", "properties": {"file": file, **properties}, "required": ["file"]}
    return {"multipart/form-data": {"schema": schema}}


def request_bodies(voices: list[str], models: list[str]) -> dict[str, dict[str, Any]]:
    """The bodies of docs/api.md, with the documented ranges and choices as constraints."""
    tts = _json_schema(TtsBody)
    tts["properties"]["text"]["maxLength"] = FUZZ_TEXT_CHARS
    tts["properties"]["format"]["enum"] = AUDIO_FORMATS
    tts["properties"]["speed"] |= {"minimum": 0.25, "maximum": 4.0}
    tts["properties"]["voice"] = {"anyOf": [{"enum": voices}, {"type": "null"}]}
    stt = _json_schema(SttBody)
    stt["properties"]["audio_base64"]["format"] = "byte"
    speech = {
        "type": "object",
        "properties": {
            "input": {"type": "string", "maxLength": FUZZ_TEXT_CHARS},
            "model": {"enum": ["tts-1", "tts-1-hd"]},
            "voice": {"enum": [*OPENAI_VOICES, *voices]},
            "response_format": {"enum": list(SPEECH_FORMATS)},
            "speed": {"type": "number", "minimum": 0.25, "maximum": 4.0},
        },
        "required": ["input"],
    }
    listen = _multipart(
        {
            "model": {"enum": models},
            "language": {"type": "string"},
            "prompt": {"type": "string"},
            "response_format": {"enum": list(TRANSCRIPT_FORMATS)},
            "temperature": {"type": "number", "minimum": 0, "maximum": 1},
            "stream": {"type": "boolean"},
        }
    )
    return {
        "POST /api/tts": {"application/json": {"schema": tts}},
        "POST /api/stt": {
            "application/json": {"schema": stt},
            **_multipart({"language": {"type": "string"}}),
        },
        "POST /v1/audio/speech": {"application/json": {"schema": speech}},
        "POST /v1/audio/transcriptions": listen,
        "POST /v1/audio/translations": listen,
        "POST /v1/listen": {  # Deepgram's: the audio itself is the body; JSON is a URL
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "audio/wav": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"url": {"type": "string"}},
                    "required": ["url"],
                }
            },
        },
        "POST /v1/speak": {  # Deepgram's: the text in JSON, the rest in the query
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"text": {"type": "string", "maxLength": FUZZ_TEXT_CHARS}},
                    "required": ["text"],
                }
            }
        },
        "POST /v1/realtime/client_secrets": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "expires_after": {
                            "type": "object",
                            "properties": {
                                "anchor": {"enum": ["created_at"]},
                                "seconds": {"type": "integer"},
                            },
                        },
                        "session": {"type": "object"},
                    },
                }
            }
        },
    }


def with_request_bodies(raw: dict[str, Any], bodies: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The served schema plus the request bodies it lacks; one it documents is kept."""
    described = copy.deepcopy(raw)
    for label, content in bodies.items():
        method, path = label.split(" ", 1)
        operation = described["paths"][path][method.lower()]
        operation.setdefault("requestBody", {"required": True, "content": content})
    return described


def operations_of(raw: dict[str, Any]) -> set[str]:
    methods = ("get", "put", "post", "delete", "patch", "options", "head", "trace")
    return {
        f"{method.upper()} {path}"
        for path, item in raw["paths"].items()
        for method in item
        if method in methods
    }


@pytest.fixture(scope="module")
def served_schema(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    raw: dict[str, Any] = response.json()
    return raw


@pytest.fixture(scope="module")
def api_schema(
    server: RunningServer, http: httpx.Client, served_schema: dict[str, Any]
) -> OpenApiSchema:
    voices = [v for names in server.container.synthesize.voices().values() for v in names]
    models = [model["id"] for model in http.get("/v1/models").json()["data"]]
    described = with_request_bodies(served_schema, request_bodies(voices, models))
    schema = schemathesis.openapi.from_dict(described)
    assert isinstance(schema, OpenApiSchema)
    schema.config.update(base_url=server.url)
    return schema


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def test_every_operation_is_fuzzed(served_schema: dict[str, Any]) -> None:
    assert operations_of(served_schema) == set(OPERATIONS)
    assert set(SCHEMA_GAPS) <= set(OPERATIONS)


# The documented error shapes (docs/api.md).


def assert_documented_error(path: str, status: int, content_type: str | None, body: Any) -> None:
    """A 4xx is JSON with a code and a message, in the shape of its API."""
    assert content_type == "application/json", (status, content_type)
    if path in ("/v1/listen", "/v1/speak"):  # Deepgram's shape
        assert isinstance(body["err_code"], str) and body["err_code"], body
        assert isinstance(body["err_msg"], str) and body["err_msg"], body
    elif path.startswith("/v1/"):
        error = body["error"]
        assert isinstance(error["message"], str) and error["message"], body
        assert error["type"] == "invalid_request_error", body
        assert "code" in error and "param" in error, body
    else:
        assert isinstance(body["code"], str) and body["code"], body
        assert isinstance(body["message"], str) and body["message"], body


def is_busy(status: int, retry_after: str | None, body: Any) -> bool:
    """The one documented 5xx a fuzzer may meet: the recognition queue is full."""
    if status != 503 or not isinstance(body, dict):
        return False
    error = body.get("error")
    code = error.get("code") if isinstance(error, dict) else body.get("code")
    return code == "busy" and retry_after is not None


def json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


# Schemathesis: every operation, in both generation modes where it takes input.

WITH_INPUT = [label for label in OPERATIONS if label.split(" ", 1)[1] in POST_PATHS]
WITH_INPUT.remove("POST /api/token")  # takes no body: nothing to break
SCHEMA_CASES = [
    *((label, GenerationMode.POSITIVE) for label in OPERATIONS),
    *((label, GenerationMode.NEGATIVE) for label in WITH_INPUT),
]


@pytest.mark.parametrize(
    ("label", "mode"), SCHEMA_CASES, ids=[f"{mode.value} {label}" for label, mode in SCHEMA_CASES]
)
def test_schema_fuzz(
    api_schema: OpenApiSchema, session: requests.Session, label: str, mode: GenerationMode
) -> None:
    method, path = label.split(" ", 1)
    operation = api_schema[path][method]
    checks = [check for check in CHECKS if check not in SCHEMA_GAPS.get(label, ())]
    statuses: Counter[int] = Counter()

    @fuzz_settings(SCHEMA_EXAMPLES)
    @given(case=operation.as_strategy(mode))
    def fuzz(case: Case[Any]) -> None:
        response: Response = case.call(session=session, timeout=60)
        statuses[response.status_code] += 1
        body = json_or_none(response.content)
        if is_busy(response.status_code, response.headers.get("retry-after", [None])[0], body):
            return
        case.validate_response(response, checks=checks)
        if 400 <= response.status_code < 500:
            assert_documented_error(
                path, response.status_code, response_content_type(response), body
            )

    fuzz()
    print(f"\n{label} {mode.value}: {statuses.total()} requests: {dict(statuses)}")
    assert statuses.total() > 0


# Raw requests that no schema describes.

FIELDS = [
    "text", "input", "audio_base64", "file", "language", "model", "voice", "format", "speed",
    "response_format", "stream", "use_cache", "temperature", "prompt", "timestamp_granularities[]",
]  # fmt: skip
FIELD_VALUES = [
    b"true", b"false", b"0.5", b"nan", b"-1", b"json", b"srt", b"vtt", b"text", b"verbose_json",
    b"word", b"segment", b"en", b"xx", b"whisper-1", b"hi.",
]  # fmt: skip


def tone_wav(seconds: float = 0.4, rate: int = 16_000) -> bytes:
    """A short real WAV, so some uploads get past decoding."""
    samples = (
        int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return out.getvalue()


TONE = tone_wav()
names = st.sampled_from(FIELDS) | st.text(st.characters(codec="utf-8"), max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=FUZZ_TEXT_CHARS)
    | st.sampled_from([value.decode() for value in FIELD_VALUES])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """Bytes with a few random bytes put in: broken syntax, invalid UTF-8 inside strings."""
    out = bytearray(data)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(out)))
        out[at:at] = draw(st.binary(min_size=1, max_size=3))
    return bytes(out)


@st.composite
def json_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    # Often a body the route accepts (its text field is there) plus odd fields and values.
    texts = st.text(max_size=FUZZ_TEXT_CHARS)
    base = draw(st.just({}) | st.fixed_dictionaries({"text": texts, "input": texts}))
    extra = draw(st.dictionaries(names, json_values, max_size=5))
    document = json.dumps(base | extra).encode()
    depth = draw(st.integers(min_value=500, max_value=5000))
    body = draw(
        st.just(document)
        | mutated(document)
        | st.binary(max_size=200)
        | st.just(b'{"text": "hi", "input": "hi", "x": ' + b"[" * depth + b"]" * depth + b"}")
    )
    return "application/json", body


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    boundary = "fuzz-boundary"
    body = b""
    for name, as_file, value in draw(
        st.lists(
            st.tuples(
                names,
                st.booleans(),
                st.sampled_from([TONE, *FIELD_VALUES]) | st.binary(max_size=64),
            ),
            max_size=5,
        )
    ):
        disposition = f'form-data; name="{name}"' + ('; filename="audio.wav"' if as_file else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += value + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    content_type = draw(
        st.sampled_from(
            [f"multipart/form-data; boundary={boundary}"] * 3
            + ["multipart/form-data", "multipart/form-data; boundary=other"]
        )
    )
    return content_type, draw(st.just(body) | mutated(body))


other_bodies = st.tuples(
    st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "", "audio/wav"])
    | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30).map(str.strip),
    st.binary(max_size=100) | st.just(b"file=x&language=en&text=hi"),
)
raw_requests = json_bodies() | multipart_bodies() | other_bodies


@pytest.mark.parametrize("path", POST_PATHS)
def test_raw_request_fuzz(http: httpx.Client, path: str) -> None:
    statuses: Counter[int] = Counter()

    @fuzz_settings(RAW_EXAMPLES)
    @given(request=raw_requests)
    def fuzz(request: tuple[str, bytes]) -> None:
        content_type, body = request
        headers = {"content-type": content_type} if content_type else {}
        response = http.post(path, content=body, headers=headers)
        statuses[response.status_code] += 1
        answer = json_or_none(response.content)
        if is_busy(response.status_code, response.headers.get("retry-after"), answer):
            return
        assert response.status_code < 500, (response.status_code, response.text[:500])
        if response.status_code >= 400:
            media_type = response.headers.get("content-type", "").split(";")[0]
            assert_documented_error(path, response.status_code, media_type, answer)

    fuzz()
    print(f"\nPOST {path} raw: {statuses.total()} requests: {dict(statuses)}")
    assert statuses.total() > 0


# What the fuzz found, pinned.

FILE_AS_TEMPERATURE = (
    b'--b\r\nContent-Disposition: form-data; name="temperature"; filename="t"\r\n\r\n0.5\r\n'
    b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF\r\n'
    b"--b--\r\n"
)
# A file sent as a plain field (no filename): Litestar decodes such a part as UTF-8 text.
FILE_AS_TEXT = (
    b'--b\r\nContent-Disposition: form-data; name="file"\r\n\r\nRIFF\x80\xff\r\n--b--\r\n'
)
UNKNOWN_CHARSET = (
    b'--b\r\nContent-Disposition: form-data; name="language"\r\n'
    b"Content-Type: text/plain; charset=no-such-charset\r\n\r\nen\r\n"
    b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF\r\n'
    b"--b--\r\n"
)
DEEP = b"[" * 100_000 + b"]" * 100_000
MULTIPART = "multipart/form-data; boundary=b"
JSON = "application/json"


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        pytest.param("/api/tts", JSON, b'{"text": "\xff"}', id="tts-invalid-utf8"),
        pytest.param("/api/tts", JSON, b'{"text": "hi", "x": ' + DEEP + b"}", id="tts-deep"),
        pytest.param("/api/stt", JSON, b'{"audio_base64": "\xff"}', id="stt-invalid-utf8"),
        pytest.param("/api/stt", JSON, b'{"audio_base64": "", "x": ' + DEEP + b"}", id="stt-deep"),
        pytest.param("/v1/audio/speech", JSON, b'{"input": "\xff"}', id="speech-invalid-utf8"),
        pytest.param(
            "/v1/audio/speech", JSON, b'{"input": "hi", "x": ' + DEEP + b"}", id="speech-deep"
        ),
        *(
            pytest.param(path, MULTIPART, body, id=f"{path.rsplit('/', 1)[1]}-{name}")
            for name, body in [
                ("file-as-temperature", FILE_AS_TEMPERATURE),
                ("file-as-text", FILE_AS_TEXT),
                ("unknown-charset", UNKNOWN_CHARSET),
            ]
            for path in ["/api/stt", "/v1/audio/transcriptions", "/v1/audio/translations"]
        ),
    ],
)
def test_malformed_bodies_are_client_errors(
    http: httpx.Client, path: str, content_type: str, body: bytes
) -> None:
    response = http.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code == 400, response.text
    assert_documented_error(path, 400, "application/json", response.json())


@pytest.mark.parametrize("response_format", ["pcm", "mp3", "wav", "aac", "opus"])
def test_speech_of_only_punctuation_streams_completely(
    http: httpx.Client, response_format: str
) -> None:
    """A piece trimmed to no samples at all ("...") used to break the stream mid-response."""
    response = http.post(
        "/v1/audio/speech", json={"input": "...", "response_format": response_format}
    )
    assert response.status_code == 200, response.text
