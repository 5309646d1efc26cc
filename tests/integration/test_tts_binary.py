"""POST /api/tts answered with the audio bytes (`Accept: audio/...`), metadata in headers."""

from __future__ import annotations

import base64
import io
import time
import wave
from typing import Any

import av
import httpx

AUDIO = {"accept": "audio/*"}


def unique(text: str) -> str:
    return f"{text} {time.time_ns()}."


def header_fields(response: httpx.Response) -> dict[str, Any]:
    """The JSON answer's fields as the binary answer's headers carry them."""
    h = response.headers
    return {
        "cached": h["x-voicepipe-cached"] == "true",
        "format": h["x-voicepipe-format"],
        "content_type": h["content-type"],
        "sample_rate": int(h["x-voicepipe-sample-rate"]),
        "duration": float(h["x-voicepipe-duration"]),
        "provider": h["x-voicepipe-provider"],
        "voice": h["x-voicepipe-voice"],
        "fallback": h["x-voicepipe-fallback"] == "true",
        "sentiment": {
            "polarity": float(h["x-voicepipe-sentiment-polarity"]),
            "subjectivity": float(h["x-voicepipe-sentiment-subjectivity"]),
            "label": h["x-voicepipe-sentiment-label"],
            "emotion": h["x-voicepipe-sentiment-emotion"],
            "keywords": [k for k in h["x-voicepipe-sentiment-keywords"].split(",") if k],
        },
        "request_id": h["x-request-id"],
    }


def test_audio_answer_is_the_json_answers_clip_with_its_fields_as_headers(
    http: httpx.Client,
) -> None:
    text = unique("What a wonderful morning for a walk in the park")
    as_json = http.post("/api/tts", json={"text": text})
    as_audio = http.post("/api/tts", json={"text": text}, headers={"accept": "audio/wav"})
    assert as_json.status_code == as_audio.status_code == 200
    body = as_json.json()
    assert as_audio.headers["content-type"] == "audio/wav" == body["content_type"]
    assert as_audio.content == base64.b64decode(body["audio_base64"])  # the cached clip
    with wave.open(io.BytesIO(as_audio.content)) as clip:
        assert clip.getframerate() == body["sample_rate"]
        assert abs(clip.getnframes() / clip.getframerate() - body["duration"]) < 0.002
    expected = {key: body[key] for key in header_fields(as_audio)}
    expected |= {"cached": True, "request_id": as_audio.headers["x-request-id"]}
    assert header_fields(as_audio) == expected
    assert body["sentiment"]["label"] == "positive"  # the headers carried a real sentiment
    assert float(as_audio.headers["x-voicepipe-latency-ms"]) >= 0


def test_audio_answer_says_whether_it_came_from_the_cache(http: httpx.Client) -> None:
    text = unique("Cached or not, the header says so")
    first = http.post("/api/tts", json={"text": text}, headers=AUDIO)
    second = http.post("/api/tts", json={"text": text}, headers=AUDIO)
    assert first.headers["x-voicepipe-cached"] == "false"
    assert second.headers["x-voicepipe-cached"] == "true"
    assert first.content == second.content
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_audio_answer_is_in_the_requested_format(http: httpx.Client) -> None:
    text = unique("Compressed speech for a small answer")
    mp3 = http.post(
        "/api/tts", json={"text": text, "format": "mp3"}, headers={"accept": "audio/mpeg"}
    )
    assert mp3.status_code == 200
    assert mp3.headers["content-type"] == "audio/mpeg"
    assert mp3.headers["x-voicepipe-format"] == "mp3"
    frames = 0
    with av.open(io.BytesIO(mp3.content), mode="r") as container:
        assert container.format.name == "mp3"
        for frame in container.decode(audio=0):
            frames += int(frame.samples)
    assert frames / int(mp3.headers["x-voicepipe-sample-rate"]) > 0.5
    opus = http.post(
        "/api/tts", json={"text": text, "format": "opus"}, headers={"accept": "audio/ogg"}
    )
    assert opus.headers["content-type"] == "audio/ogg; codecs=opus"
    assert opus.content.startswith(b"OggS")


def test_json_stays_the_default(http: httpx.Client) -> None:
    text = unique("Still JSON unless audio is asked for")
    for accept in (None, "*/*", "application/json", "audio/*, application/json", "text/html, */*"):
        headers = {"accept": accept} if accept else {}
        response = http.post("/api/tts", json={"text": text}, headers=headers)
        assert response.headers["content-type"] == "application/json", accept
        assert "audio_base64" in response.json()
    preferred = http.post(
        "/api/tts", json={"text": text}, headers={"accept": "application/json;q=0.5, audio/wav"}
    )
    assert preferred.headers["content-type"] == "audio/wav"


def test_unsatisfiable_accept_is_a_406_in_json(http: httpx.Client) -> None:
    text = unique("Nobody can read this answer")
    for accept, body in (
        ("text/html", {"text": text}),
        ("audio/mpeg", {"text": text}),  # the format is wav unless `format` says mp3
        ("audio/wav", {"text": text, "format": "flac"}),
        ("application/json;q=0, audio/*;q=0", {"text": text}),
    ):
        response = http.post("/api/tts", json=body, headers={"accept": accept})
        assert response.status_code == 406, accept
        assert response.headers["content-type"] == "application/json"
        error = response.json()
        assert error["code"] == "not_acceptable"
        assert "application/json" in error["message"]
        assert error["request_id"] == response.headers["x-request-id"]


def test_errors_stay_json_when_audio_was_asked_for(http: httpx.Client) -> None:
    for body, code in (({"text": ""}, "empty_text"), ({"text": "hi", "format": "xyz"}, None)):
        response = http.post("/api/tts", json=body, headers=AUDIO)
        assert 400 <= response.status_code < 500
        assert response.headers["content-type"] == "application/json"
        error = response.json()
        assert error["code"] == (code or error["code"]) and error["message"]
    bad_json = http.post(
        "/api/tts", content=b"{", headers={**AUDIO, "content-type": "application/json"}
    )
    assert bad_json.status_code == 400 and bad_json.json()["code"] == "invalid_json"


def test_a_streamed_answer_is_audio_whatever_accept_says(http: httpx.Client) -> None:
    body = {"text": unique("Streams were always audio"), "stream": True, "format": "pcm"}
    for accept in ("application/json", "audio/*"):
        response = http.post("/api/tts", json=body, headers={"accept": accept})
        assert response.status_code == 200
        assert response.headers["x-audio-format"] == "pcm_s16le"
        assert response.headers["content-type"] == "audio/L16"  # not the route's JSON
        assert "x-voicepipe-cached" not in response.headers  # the stream's own headers
        assert len(response.content) > 1000 and len(response.content) % 2 == 0
        assert not response.content.startswith(b"{")
