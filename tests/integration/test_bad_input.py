"""Every bad input gets a specific 4xx / error frame, and the WebSocket stays usable."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.integration.conftest import RunningServer
from tests.integration.speech import speak

MB = 1024 * 1024


@pytest.fixture(scope="module")
def wav(http: httpx.Client) -> bytes:
    return speak(http, "A short clip for broken audio tests.")


@pytest.fixture(scope="module")
def mp3(http: httpx.Client) -> bytes:
    return speak(http, "A short clip for broken audio tests.", "mp3")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def assert_clean_error(body: dict[str, Any], code: str) -> None:
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    # No leaked internals: no tracebacks, exception class names or file paths.
    for leak in ("Traceback", "Error(", ".py", "Exception"):
        assert leak not in body["message"], body["message"]


TTS_CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("empty text", {"text": ""}, 400, "empty_text"),
    ("whitespace text", {"text": " \n\t "}, 400, "empty_text"),
    ("text over the limit", {"text": "word " * 1001}, 413, "text_too_long"),
    ("text of the wrong type", {"text": 42}, 400, "invalid_request"),
    ("missing text", {"words": "hello"}, 400, "invalid_request"),
    ("unsupported format", {"text": "hi", "format": "aiff"}, 400, "unsupported_format"),
    ("unknown voice", {"text": "hi", "voice": "nobody"}, 400, "unknown_voice"),
]


@pytest.mark.parametrize(
    ("name", "body", "status", "code"), TTS_CASES, ids=[c[0] for c in TTS_CASES]
)
def test_rest_tts_bad_input(
    http: httpx.Client, name: str, body: dict[str, Any], status: int, code: str
) -> None:
    response = http.post("/api/tts", json=body)
    assert response.status_code == status
    assert_clean_error(response.json(), code)


@pytest.mark.parametrize(
    ("content", "code"),
    [(b"{not json", "invalid_json"), (b"[1, 2]", "invalid_request"), (b"", "invalid_request")],
)
def test_rest_body_that_is_not_the_right_json(
    http: httpx.Client, content: bytes, code: str
) -> None:
    for path in ("/api/tts", "/api/stt"):
        response = http.post(path, content=content, headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert_clean_error(response.json(), code)


def stt_cases(wav: bytes, mp3: bytes) -> list[tuple[str, dict[str, Any], int, str]]:
    return [
        ("invalid base64", {"audio_base64": "***not base64***"}, 400, "invalid_base64"),
        ("audio of the wrong type", {"audio_base64": 12}, 400, "invalid_request"),
        (
            "bytes that are not audio",
            {"audio_base64": b64(b"hello, I am text" * 50)},
            400,
            "invalid_audio",
        ),
        ("truncated wav header", {"audio_base64": b64(wav[:40])}, 400, "invalid_audio"),
        ("truncated wav", {"audio_base64": b64(wav[: len(wav) // 2])}, 400, "invalid_audio"),
        ("truncated mp3", {"audio_base64": b64(mp3[:300])}, 400, "invalid_audio"),
        ("empty audio", {"audio_base64": ""}, 400, "invalid_audio"),
        (
            "unknown language",
            {"audio_base64": b64(wav), "language": "xx"},
            400,
            "unsupported_language",
        ),
    ]


def test_rest_stt_bad_input(http: httpx.Client, wav: bytes, mp3: bytes) -> None:
    for name, body, status, code in stt_cases(wav, mp3):
        response = http.post("/api/stt", json=body)
        assert response.status_code == status, name
        assert_clean_error(response.json(), code)


def test_rest_audio_over_the_size_limit(http: httpx.Client) -> None:
    big = b"\x00" * (26 * MB)
    response = http.post("/api/stt", json={"audio_base64": b64(big)})
    assert response.status_code == 413
    assert_clean_error(response.json(), "audio_too_large")
    upload = http.post("/api/stt", files={"file": ("big.wav", big)})
    assert upload.status_code == 413
    assert_clean_error(upload.json(), "audio_too_large")


def test_rest_multipart_without_a_file(http: httpx.Client) -> None:
    response = http.post("/api/stt", data={"language": "en"}, files={"other": ("x", b"1")})
    assert response.status_code == 400
    assert_clean_error(response.json(), "invalid_request")


def test_rest_unknown_route_and_method(http: httpx.Client) -> None:
    assert_clean_error(http.get("/api/nothing").json(), "not_found")
    response = http.get("/api/tts")
    assert response.status_code == 405
    assert_clean_error(response.json(), "method_not_allowed")


def test_websocket_bad_input_keeps_the_connection(
    server: RunningServer, wav: bytes, mp3: bytes
) -> None:
    frames: list[tuple[str, str | bytes, str]] = [
        (name, json.dumps({"type": "text", **body}), code) for name, body, _, code in TTS_CASES
    ]
    frames += [
        (
            name,
            json.dumps(
                {
                    "type": "audio",
                    "audio": body["audio_base64"],
                    **({"language": body["language"]} if "language" in body else {}),
                }
            ),
            code,
        )
        for name, body, _, code in stt_cases(wav, mp3)
    ]
    frames += [
        ("not json", "{type: text", "invalid_json"),
        ("json but not an object", "[1, 2, 3]", "unknown_message_type"),
        ("no type", json.dumps({"text": "hi"}), "unknown_message_type"),
        ("unknown type", json.dumps({"type": "dance"}), "unknown_message_type"),
        ("binary frame", b"\x00\x01\x02", "unsupported_frame"),
        (
            "audio over the limit",
            json.dumps({"type": "audio", "audio": b64(b"\0" * 26 * MB)}),
            "audio_too_large",
        ),
    ]
    with connect(server.ws_url, max_size=None) as ws:
        for name, frame, code in frames:
            ws.send(frame)
            reply = json.loads(ws.recv(timeout=30))
            assert reply["type"] == "error", name
            assert_clean_error(reply, code)
            # The same connection still serves a valid request.
            ws.send(json.dumps({"type": "text", "text": "Still here.", "id": name}))
            ok = json.loads(ws.recv(timeout=30))
            assert ok["type"] == "audio" and ok["id"] == name, name
