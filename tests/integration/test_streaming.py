"""Streaming over a real WebSocket client: speech out in chunks, transcripts while speaking."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import time
import wave
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.sync.client import ClientConnection, connect

from application.ports import TranscriptionJob
from domain.speech import AudioClip, TranscriptionHints
from entrypoints.bootstrap import Container
from tests.integration.conftest import RunningServer, SteppedClock, sharing_models
from tests.integration.speech import run_sync, speech_16k_pcm, wer

THREE = (
    "The weather is lovely today. We should walk along the river after lunch. "
    "Bring a warm coat, because the wind can be cold near the water."
)


def collect_stream(ws: ClientConnection) -> tuple[dict[str, Any], list[bytes], dict[str, Any]]:
    start = json.loads(ws.recv(timeout=60))
    assert start["type"] == "audio_start", start
    chunks: list[bytes] = []
    while True:
        frame = ws.recv(timeout=60)
        if isinstance(frame, bytes):
            chunks.append(frame)
            continue
        message = json.loads(frame)
        if message["type"] == "audio_chunk":
            import pybase64

            chunks.append(pybase64.b64decode(message["audio"]))
            continue
        assert message["type"] == "audio_end", message
        return start, chunks, message


def to_wav(pcm: bytes, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return out.getvalue()


def transcribe(http: httpx.Client, wav: bytes) -> str:
    return str(http.post("/api/stt", files={"file": ("a.wav", wav)}).json()["text"])


def test_streamed_speech_arrives_in_playable_chunks(
    server: RunningServer, http: httpx.Client
) -> None:
    with connect(server.ws_url, max_size=None) as ws:
        ws.send(
            json.dumps(
                {"type": "text", "text": THREE, "stream": True, "id": "s1", "use_cache": False}
            )
        )
        start, chunks, end = collect_stream(ws)
    assert (start["id"], start["format"], start["channels"]) == ("s1", "pcm_s16le", 1)
    assert start["sample_rate"] == 22050 and start["provider"] == "piper"
    assert len(chunks) >= 3 and end["chunks"] == len(chunks)
    pcm = b"".join(chunks)
    assert abs(len(pcm) / 2 / start["sample_rate"] - end["duration"]) < 0.01
    assert end["first_chunk_ms"] < 0.6 * end["latency_ms"]
    assert end["sentiment"]["label"] in {"positive", "negative", "neutral"}
    # No clicks where chunks meet: each starts and ends in (near) silence.
    for before, after in itertools.pairwise(chunks):
        a = np.frombuffer(before[-2:], "<i2")[0]
        b = np.frombuffer(after[:2], "<i2")[0]
        assert abs(int(a) - int(b)) < 2000
    assert wer(THREE, transcribe(http, to_wav(pcm, start["sample_rate"]))) <= 0.15


def test_base64_chunks_and_cached_stream(server: RunningServer) -> None:
    text = "Cached streams start at once. They come from memory."
    with connect(server.ws_url, max_size=None) as ws:
        ws.send(json.dumps({"type": "text", "text": text, "stream": True, "binary": False}))
        first_start, first, first_end = collect_stream(ws)
        assert first_start["transport"] == "base64" and not first_end["cached"]
        ws.send(json.dumps({"type": "text", "text": text, "stream": True}))
        start, chunks, end = collect_stream(ws)
    assert start["cached"] is True and end["cached"] is True
    assert b"".join(chunks) == b"".join(first)
    assert end["first_chunk_ms"] < first_end["first_chunk_ms"] / 4  # no synthesis this time


def test_incremental_text_starts_at_each_sentence(server: RunningServer) -> None:
    with connect(server.ws_url, max_size=None) as ws:
        for piece in ["Hello the", "re. How are"]:
            ws.send(json.dumps({"type": "text_delta", "id": "llm", "text": piece}))
        start = json.loads(ws.recv(timeout=30))  # the first sentence is spoken before flush
        assert start["type"] == "audio_start" and start["id"] == "llm"
        ws.send(json.dumps({"type": "text_delta", "id": "llm", "text": " you? I am fine"}))
        ws.send(json.dumps({"type": "flush", "id": "llm"}))
        chunks, end = [], None
        while end is None:
            frame = ws.recv(timeout=30)
            if isinstance(frame, bytes):
                chunks.append(frame)
            else:
                end = json.loads(frame)
    assert end["type"] == "audio_end"
    assert end["text"] == "Hello there. How are you? I am fine"
    assert len(chunks) == 3


def test_cancel_stops_at_once_and_the_connection_goes_on(server: RunningServer) -> None:
    long_text = " ".join(f"This is sentence number {i} of a long story." for i in range(30))
    with connect(server.ws_url, max_size=None) as ws:
        ws.send(
            json.dumps(
                {"type": "text", "text": long_text, "stream": True, "id": "c", "use_cache": False}
            )
        )
        assert json.loads(ws.recv(timeout=30))["type"] == "audio_start"
        ws.send(json.dumps({"type": "cancel", "id": "c"}))
        chunks, end = 0, None
        while end is None:
            frame = ws.recv(timeout=30)
            if isinstance(frame, bytes):
                chunks += 1
            else:
                end = json.loads(frame)
        assert end["type"] == "audio_end" and end["cancelled"] is True
        assert chunks < 5  # of 30 sentences
        ws.send(json.dumps({"type": "text", "text": "Still here.", "id": "v1"}))
        assert json.loads(ws.recv(timeout=30))["type"] == "audio"


def test_rest_streaming_is_chunked(server: RunningServer) -> None:
    body = {"text": THREE, "stream": True, "format": "wav", "use_cache": False}
    with httpx.stream("POST", f"{server.url}/api/tts", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["x-sample-rate"] == "22050"
        assert response.headers["content-type"] == "audio/wav"
        assert "content-length" not in response.headers
        parts = list(response.iter_bytes())
    data = b"".join(parts)
    assert data[:4] == b"RIFF" and len(data) > 44 + 22050 * 2
    bad = httpx.post(f"{server.url}/api/tts", json={**body, "format": "mp3"})
    assert bad.status_code == 400 and bad.json()["code"] == "unsupported_format"


FIRST = "Good morning, I would like to book a table for two people tonight."
SECOND = "Thank you very much, that is perfect."
FRAME = 640  # 20 ms of 16 kHz s16le


def speech_16k(text: str) -> bytes:
    return speech_16k_pcm(text)


def silence(seconds: float) -> bytes:
    return b"\x00\x00" * int(16_000 * seconds)


def send_audio(ws: ClientConnection, pcm: bytes, realtime: bool = False) -> None:
    for i in range(0, len(pcm), FRAME):
        ws.send(pcm[i : i + FRAME])
        if realtime:
            time.sleep(0.02)


def receive_until(ws: ClientConnection, kind: str, count: int = 1) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while sum(1 for m in seen if m["type"] == kind) < count:
        seen.append(json.loads(ws.recv(timeout=60)))
        assert seen[-1]["type"] != "error", seen[-1]
    return seen


def test_utterances_get_partials_and_timed_finals(server: RunningServer) -> None:
    first, second = speech_16k(FIRST), speech_16k(SECOND)
    with connect(server.ws_url, max_size=None) as ws:
        ws.send(json.dumps({"type": "stt_start", "id": "mic", "sample_rate": 16000}))
        assert json.loads(ws.recv(timeout=10))["type"] == "stt_started"
        send_audio(ws, silence(0.5) + first, realtime=True)
        send_audio(ws, silence(1.0) + second + silence(1.0))
        messages = receive_until(ws, "final", 2)
        ws.send(json.dumps({"type": "stt_stop"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "stt_stopped"
    partials = [m for m in messages if m["type"] == "partial"]
    finals = [m for m in messages if m["type"] == "final"]
    assert partials and all(p["utterance"] == 0 and p["text"] for p in partials)
    assert [f["utterance"] for f in finals] == [0, 1]
    assert wer(FIRST, finals[0]["text"]) <= 0.15 and wer(SECOND, finals[1]["text"]) <= 0.15
    first_end = 0.5 + len(first) / 32_000
    assert 0.2 <= finals[0]["start"] < 0.6 and finals[0]["end"] <= first_end + 0.5
    assert finals[1]["start"] >= first_end + 0.5  # timed from the start of the stream
    assert finals[1]["segments"][0]["start"] >= finals[1]["start"]
    assert finals[0]["sentiment"]["label"] in {"positive", "neutral", "negative"}


def test_client_can_force_the_end_of_an_utterance(server: RunningServer) -> None:
    with connect(server.ws_url, max_size=None) as ws:
        ws.send(json.dumps({"type": "stt_start"}))
        ws.recv(timeout=10)
        send_audio(ws, speech_16k(SECOND))  # no trailing silence: no endpoint by itself
        ws.send(json.dumps({"type": "stt_end"}))
        final = receive_until(ws, "final")[-1]
        assert wer(SECOND, final["text"]) <= 0.15


def test_compressed_browser_chunks_are_accepted(server: RunningServer) -> None:
    import av

    pcm = silence(0.3) + speech_16k(FIRST) + silence(1.0)
    out = io.BytesIO()
    with av.open(out, "w", format="webm") as container:
        stream = container.add_stream("libopus", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            np.frombuffer(pcm, "<i2").reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    webm = out.getvalue()
    with connect(server.ws_url, max_size=None) as ws:
        ws.send(json.dumps({"type": "stt_start", "encoding": "webm"}))
        ws.recv(timeout=10)
        for i in range(0, len(webm), 1500):  # MediaRecorder-sized slices
            ws.send(webm[i : i + 1500])
        ws.send(json.dumps({"type": "stt_stop"}))
        messages = receive_until(ws, "stt_stopped")
    finals = [m for m in messages if m["type"] == "final"]
    assert len(finals) == 1 and wer(FIRST, finals[0]["text"]) <= 0.15


def test_other_sample_rates_are_resampled(server: RunningServer) -> None:
    pcm16 = np.frombuffer(silence(0.3) + speech_16k(SECOND) + silence(1.0), "<i2")
    pcm48 = np.repeat(pcm16, 3).astype("<i2").tobytes()  # crude 48 kHz copy
    with connect(server.ws_url, max_size=None) as ws:
        ws.send(json.dumps({"type": "stt_start", "sample_rate": 48000}))
        ws.recv(timeout=10)
        for i in range(0, len(pcm48), 1920):
            ws.send(pcm48[i : i + 1920])
        final = receive_until(ws, "final")[-1]
    assert wer(SECOND, final["text"]) <= 0.15


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"type": "stt_start", "encoding": "flac"}, "invalid_request"),
        ({"type": "stt_start", "sample_rate": 1000}, "invalid_request"),
        ({"type": "stt_end"}, "invalid_request"),
        ({"type": "flush", "id": "nope"}, "invalid_request"),
        ({"type": "cancel"}, "invalid_request"),
    ],
)
def test_bad_streaming_messages_get_errors(
    server: RunningServer, message: dict[str, Any], code: str
) -> None:
    with connect(server.ws_url, max_size=None) as ws:
        ws.send(json.dumps(message))
        reply = json.loads(ws.recv(timeout=10))
        assert (reply["type"], reply["code"]) == ("error", code)
        ws.send(json.dumps({"type": "stt_start"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "stt_started"
        ws.send(b"\x00" * (300 * 1024))
        assert json.loads(ws.recv(timeout=10))["code"] == "frame_too_large"
        ws.send(json.dumps({"type": "stt_start"}))
        assert json.loads(ws.recv(timeout=10))["code"] == "invalid_request"  # already open


def test_shutdown_finishes_the_utterance_in_flight(container: Any) -> None:
    from websockets.exceptions import ConnectionClosed

    own = sharing_models(container, container.settings)  # its shutdown is its own
    with RunningServer(own) as running, connect(running.ws_url, max_size=None) as ws:
        ws.send(json.dumps({"type": "stt_start", "id": "last"}))
        ws.recv(timeout=10)
        send_audio(ws, speech_16k(SECOND))  # speech still going when the server stops
        time.sleep(0.2)
        running.server.should_exit = True
        seen = []
        try:
            while True:
                seen.append(json.loads(ws.recv(timeout=30)))
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
    kinds = [m["type"] for m in seen]
    closing = kinds.index("closing")  # drafts of the speech may come before it, nothing else
    assert set(kinds[:closing]) <= {"partial"}, kinds
    assert "final" in kinds[closing:] and kinds[-1] == "stt_stopped", kinds
    final = next(m for m in seen if m["type"] == "final")
    assert wer(SECOND, final["text"]) <= 0.15
    assert code == 1001


def test_a_message_flood_is_limited_and_the_connection_recovers(
    server: RunningServer, clock: SteppedClock
) -> None:
    with connect(server.ws_url, max_size=None) as ws, clock.stopped():
        for _ in range(400):
            ws.send(json.dumps({"type": "cancel", "id": "none"}))
        codes = [json.loads(ws.recv(timeout=10))["code"] for _ in range(400)]
        # With the clock stopped nothing refills: exactly the burst of 200 passes, in order.
        assert codes == ["invalid_request"] * 200 + ["rate_limited"] * 200
        clock.advance(0.01)  # half a message at 50 a second
        ws.send(json.dumps({"type": "cancel", "id": "none"}))
        assert json.loads(ws.recv(timeout=10))["code"] == "rate_limited"
        clock.advance(1.0)
        ws.send(json.dumps({"type": "text", "text": "Calm again."}))
        assert json.loads(ws.recv(timeout=30))["type"] == "audio"


def test_a_full_model_queue_answers_busy() -> None:
    import msgspec

    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import Settings

    settings = msgspec.structs.replace(Settings(), stt_queue_max=1)
    pcm = speech_16k(FIRST)
    wav = io.BytesIO()
    with wave.open(wav, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)

    async def burst(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            calls = [
                client.post("/api/stt", files={"file": ("a.wav", wav.getvalue())}) for _ in range(4)
            ]
            return list(await asyncio.gather(*calls))

    with RunningServer(bootstrap(settings)) as running:
        responses = run_sync(burst(running.url))
    statuses = sorted(r.status_code for r in responses)
    assert statuses[0] == 200 and statuses[-1] == 503
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.json()["code"] == "busy" and busy.headers["retry-after"] == "1"


@pytest.mark.parametrize("trimmed_ms", [0, 24, 88])
async def test_a_streamed_final_keeps_its_last_sentence(
    container: Container, trimmed_ms: int
) -> None:
    # The stream cuts at its VAD windows, close to the last word. On a shortened encoder
    # window without timestamp tokens, tiny.en ended after "Thank you very much." here.
    pcm = speech_16k(SECOND)
    clip = AudioClip(pcm[: len(pcm) - 32 * trimmed_ms], 16_000)
    heard = await container.transcriber.transcribe(TranscriptionJob(clip, kind="utterance"))
    assert "perfect" in heard.text.lower(), heard.text


@pytest.mark.parametrize("text", [FIRST, SECOND])
async def test_word_timings_invent_nothing_in_the_silence_after(
    container: Container, text: str
) -> None:
    # Word timings made faster-whisper decode the silence after the last word, where Whisper
    # said "Thank you." (Deepgram's live finals carry words).
    clip = AudioClip(speech_16k(text) + silence(0.3), 16_000)
    job = TranscriptionJob(clip, kind="utterance", hints=TranscriptionHints(words=True))
    heard = await container.transcriber.transcribe(job)
    assert wer(text, heard.text) <= 0.15, heard.text
    assert heard.words and heard.words[-1].end <= clip.duration_ms / 1000


def test_a_model_slot_is_freed_when_the_loop_that_asked_has_stopped(container: Container) -> None:
    # A service sharing the models stops (its loop closes) while its job runs: the slot must
    # still be freed, or every later partial is refused as "busy" (drafts wait for no one).
    transcriber: Any = container.transcriber  # one model, or the models sharing one queue
    before = transcriber.queued
    clip = AudioClip(speech_16k(f"{FIRST} {SECOND}"), 16_000)

    async def ask_and_leave() -> None:
        asyncio.get_running_loop().create_task(transcriber.transcribe(TranscriptionJob(clip)))
        await asyncio.sleep(0.1)  # the job is running on the model thread when the loop ends

    asyncio.run(ask_and_leave())
    deadline = time.monotonic() + 30
    while transcriber.queued != before:
        assert time.monotonic() < deadline, f"{transcriber.queued} jobs still counted"
        time.sleep(0.05)
