"""More hostile input, each case over REST and over one WebSocket that must keep working.

Malformed JSON, wrong types, huge values and unicode edge cases; the audio, key, token and
flood cases are in test_bad_input.py and test_security.py.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.integration.conftest import RunningServer
from tests.integration.test_bad_input import assert_clean_error


def tts(**fields: Any) -> str:
    return json.dumps({"text": "Hello there.", **fields})


# (name, raw JSON body of a TTS request, HTTP status, code)
CASES: list[tuple[str, str, int, str]] = [
    ("trailing garbage", '{"text": "hi"} extra', 400, "invalid_json"),
    ("unterminated string", '{"text": "hi', 400, "invalid_json"),
    ("single quotes", "{'text': 'hi'}", 400, "invalid_json"),
    ("NaN literal", '{"text": "hi", "speed": NaN}', 400, "invalid_json"),
    ("Infinity literal", '{"text": "hi", "speed": Infinity}', 400, "invalid_json"),
    ("number too large for a float", '{"text": "hi", "speed": 1e999999}', 400, "invalid_request"),
    (
        "deeply nested",
        '{"text": "hi", "voice": ' + "[" * 5000 + "]" * 5000 + "}",
        400,
        "invalid_request",
    ),
    ("null body", "null", 400, "invalid_request"),
    ("a string body", '"text"', 400, "invalid_request"),
    ("a number body", "42", 400, "invalid_request"),
    ("text is null", '{"text": null}', 400, "invalid_request"),
    ("text is a list", '{"text": ["a", "b"]}', 400, "invalid_request"),
    ("text is an object", '{"text": {"a": 1}}', 400, "invalid_request"),
    ("text is a bool", '{"text": true}', 400, "invalid_request"),
    ("voice is a number", tts(voice=7), 400, "invalid_request"),
    ("format is a list", tts(format=["wav"]), 400, "invalid_request"),
    ("use_cache is a string", tts(use_cache="yes"), 400, "invalid_request"),
    ("speed is a string", tts(speed="fast"), 400, "invalid_request"),
    ("speed is zero", tts(speed=0), 400, "invalid_request"),
    ("speed is negative", tts(speed=-1), 400, "invalid_request"),
    ("speed is huge", tts(speed=1e308), 400, "invalid_request"),
    ("format is huge", tts(format="w" * 100_000), 400, "unsupported_format"),
    ("voice is huge", tts(voice="v" * 100_000), 400, "unknown_voice"),
    ("text far over the limit", json.dumps({"text": "a" * 1_000_000}), 413, "text_too_long"),
    (
        "only zero-width characters",
        json.dumps({"text": "\u200b\u200c\u200d\ufeff"}),
        400,
        "empty_text",
    ),
    ("only control characters", json.dumps({"text": "\x00\x01\x02\x1f"}), 400, "empty_text"),
    ("lone surrogate escape", '{"text": "\\ud800"}', 400, "invalid_json"),
    ("5001 emoji", json.dumps({"text": "😀" * 5001}), 413, "text_too_long"),
    ("invalid UTF-8", b'{"text": "\xff\xfe"}'.decode("latin-1"), 400, "invalid_json"),
]

# Unicode that is odd but speakable must be spoken, not refused.
SPEAKABLE = [
    ("right-to-left marks around text", "\u202eHello there\u202c."),
    ("emoji between words", "Good 😀 morning 🌍."),
    ("NUL inside text", "Hello\x00 world."),
    ("decomposed accents", "Cafe\u0301 au lait."),
    ("full-width letters", "Ｈｅｌｌｏ."),
    ("a letter under 5000 combining marks", "Ha" + "\u0301" * 5000 + "llo."),
]


@pytest.mark.parametrize(("name", "body", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_rest_refuses_with_a_clear_code(
    http: httpx.Client, name: str, body: str, status: int, code: str
) -> None:
    raw = body.encode("latin-1") if name == "invalid UTF-8" else body.encode()
    response = http.post("/api/tts", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert_clean_error(response.json(), code)


@pytest.mark.parametrize(("name", "text"), SPEAKABLE, ids=[c[0] for c in SPEAKABLE])
def test_odd_but_speakable_unicode_is_spoken(http: httpx.Client, name: str, text: str) -> None:
    response = http.post("/api/tts", json={"text": text})
    assert response.status_code == 200, response.text
    assert response.json()["duration"] > 0.2


@pytest.fixture(scope="module")
def socket(server: RunningServer) -> Any:
    with connect(server.ws_url, max_size=None) as connection:
        yield connection


def ws_frame(body: str) -> str:
    """The TTS body as a WebSocket `text` message (bodies that are not objects stay as sent)."""
    if body.startswith("{") and body.endswith("}") and '"text"' in body:
        return '{"type": "text", ' + body[1:]
    return body


# A WebSocket text frame is UTF-8 by definition: the invalid UTF-8 case is REST's alone.
WS_CASES = [c for c in CASES if c[0] != "invalid UTF-8"]


@pytest.mark.parametrize(("name", "body", "status", "code"), WS_CASES, ids=[c[0] for c in WS_CASES])
def test_websocket_answers_an_error_frame_and_goes_on(
    socket: ClientConnection, name: str, body: str, status: int, code: str
) -> None:
    socket.send(ws_frame(body))
    frame = json.loads(socket.recv(timeout=30))
    assert frame["type"] == "error"
    expected = "unknown_message_type" if not body.lstrip().startswith("{") else code
    assert frame["code"] == expected, frame
    assert frame["message"]
    socket.send(json.dumps({"type": "text", "id": "after", "text": "Still here."}))
    reply = json.loads(socket.recv(timeout=60))
    assert reply["type"] == "audio" and reply["id"] == "after"
