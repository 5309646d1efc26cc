"""Piper speaks, faster-whisper listens: over REST (JSON and multipart) and the WebSocket."""

from __future__ import annotations

import base64
import io
import json
import wave

import av
import httpx
import pytest
from websockets.sync.client import connect

from tests.integration.conftest import RunningServer
from tests.integration.speech import SENTENCES, heard, speak


@pytest.mark.parametrize("sentence", SENTENCES)
def test_rest_round_trip(http: httpx.Client, sentence: str) -> None:
    audio = speak(http, sentence)
    response = http.post("/api/stt", json={"audio_base64": base64.b64encode(audio).decode()})
    assert response.status_code == 200, response.text
    body = response.json()
    assert heard(sentence, body["text"]), body["text"]
    assert body["language"] == "en"
    assert body["duration"] > 1.0
    assert body["segments"] and body["segments"][0]["start"] >= 0.0
    assert body["segments"][-1]["end"] <= body["duration"]
    assert set(body["segments"][0]) == {"start", "end", "text", "avg_logprob", "no_speech_prob"}
    assert body["sentiment"]["label"] in {"positive", "negative", "neutral"}
    assert body["latency_ms"] > 0


def test_multipart_upload_round_trip(http: httpx.Client) -> None:
    sentence = SENTENCES[1]
    audio = speak(http, sentence, "mp3")
    response = http.post(
        "/api/stt", files={"file": ("speech.mp3", audio, "audio/mpeg")}, data={"language": "en"}
    )
    assert response.status_code == 200, response.text
    assert heard(sentence, response.json()["text"]), response.json()["text"]


def test_websocket_round_trip(server: RunningServer) -> None:
    with connect(server.ws_url, max_size=None) as ws:
        for sentence in SENTENCES:
            ws.send(json.dumps({"type": "text", "text": sentence, "id": "t"}))
            spoken = json.loads(ws.recv(timeout=60))
            assert spoken["type"] == "audio" and spoken["id"] == "t"
            assert spoken["duration"] > 1.0 and spoken["latency_ms"] > 0
            assert set(spoken["sentiment"]) >= {"polarity", "subjectivity", "label"}
            ws.send(json.dumps({"type": "audio", "audio": spoken["audio"], "language": "en"}))
            transcript = json.loads(ws.recv(timeout=60))
            assert transcript["type"] == "transcript", transcript
            assert heard(sentence, transcript["text"]), transcript["text"]


def test_positive_text_has_positive_sentiment(http: httpx.Client) -> None:
    body = http.post("/api/tts", json={"text": SENTENCES[2]}).json()
    assert body["sentiment"]["label"] == "positive"
    assert body["sentiment"]["emotion"] == "joy"
    assert "day" in body["sentiment"]["keywords"]


@pytest.mark.parametrize("audio_format", ["wav", "mp3", "opus", "flac", "pcm"])
def test_every_output_format_decodes(http: httpx.Client, audio_format: str) -> None:
    body = http.post(
        "/api/tts", json={"text": "Testing every format.", "format": audio_format}
    ).json()
    data = base64.b64decode(body["audio_base64"])
    assert body["format"] == audio_format
    if audio_format == "pcm":
        seconds = len(data) / 2 / body["sample_rate"]
    else:
        with av.open(io.BytesIO(data), "r") as container:
            stream = container.streams.audio[0]
            frames = sum(int(f.samples) for f in container.decode(stream))
            seconds = frames / stream.rate
    assert abs(seconds - body["duration"]) < 0.1


def test_wav_output_is_loudness_normalized(http: httpx.Client) -> None:
    import numpy as np

    audio = speak(http, "Loudness should be the same for every sentence we speak.")
    with wave.open(io.BytesIO(audio)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16) / 32768.0
    dbfs = 20 * np.log10(np.sqrt(np.mean(samples**2)))
    assert -21.0 <= dbfs <= -19.0


def test_silence_gives_an_empty_transcript(http: httpx.Client) -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    for samples in (np.zeros(16000 * 3), rng.normal(0, 0.01, 16000 * 3)):
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes((samples * 32767).astype("<i2").tobytes())
        response = http.post("/api/stt", files={"file": ("quiet.wav", buffer.getvalue())})
        assert response.status_code == 200
        assert response.json()["text"] == ""
        assert response.json()["segments"] == []
