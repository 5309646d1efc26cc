"""Deepgram's /v1/listen, driven end to end by the official `deepgram-sdk` against a real
server on loopback, with real speech (Piper) and the real model."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import json
import wave
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from deepgram import AsyncDeepgramClient, DeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from adapters.g711 import encode as g711_encode
from adapters.pyav_audio_streams import PyAVAudioConverter
from entrypoints.bootstrap import Container
from entrypoints.settings import Settings
from tests.integration.conftest import RunningServer, sharing_models
from tests.integration.speech import SENTENCES, heard, speech_16k_pcm, wer
from tests.integration.test_audio_streams import _opus

KEY = "dg-test-secret"
FIRST, SECOND = SENTENCES[0], SENTENCES[1]
LONG = SENTENCES[2]  # about 3 s: long enough for drafts while it is spoken


@functools.cache
def pcm16k(text: str) -> bytes:
    return speech_16k_pcm(text)


def silence(ms: int, rate: int = 16_000) -> bytes:
    return b"\x00\x00" * (rate * ms // 1000)


def resampled(pcm: bytes, rate: int) -> bytes:
    return PyAVAudioConverter().resample(pcm, 16_000, rate)


def wav(pcm: bytes, rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm)
    return buffer.getvalue()


def ogg_opus(pcm: bytes, rate: int = 16_000) -> bytes:
    return _opus(pcm, rate, "ogg")


def environment(server: RunningServer) -> DeepgramClientEnvironment:
    ws = server.url.replace("http://", "ws://")
    return DeepgramClientEnvironment(
        base=server.url, production=ws, agent=ws, agent_rest=server.url
    )


def client(server: RunningServer, key: str = "unused") -> DeepgramClient:
    return DeepgramClient(api_key=key, environment=environment(server))


def live_client(server: RunningServer, key: str = "unused") -> AsyncDeepgramClient:
    return AsyncDeepgramClient(api_key=key, environment=environment(server))


@pytest.fixture(scope="module")
def keyed(container: Container) -> Iterator[RunningServer]:
    """The service with an API key, sharing the session's loaded models."""
    with RunningServer(sharing_models(container, Settings(api_keys=(KEY,)))) as running:
        yield running


def assert_words_sane(words: list[Any], start: float, end: float) -> None:
    assert words
    previous_start = start - 0.01
    for word in words:
        assert start - 0.01 <= word.start <= word.end <= end + 0.05, (word, start, end)
        assert word.start >= previous_start, words  # in order
        assert 0.0 <= word.confidence <= 1.0
        assert word.word and word.word == word.word.lower()
        assert not any(p in word.word for p in ".,!?")
        previous_start = word.start


# Prerecorded


def test_prerecorded_wav_with_words_and_utterances(server: RunningServer) -> None:
    audio = pcm16k(FIRST) + silence(2000) + pcm16k(SECOND)
    response = client(server).listen.v1.media.transcribe_file(
        request=wav(audio),
        model="nova-3",
        punctuate=True,
        smart_format=True,
        utterances=True,
        language="en-US",
    )
    metadata = response.metadata
    assert isinstance(metadata.request_id, str) and metadata.request_id
    assert abs(metadata.duration - len(audio) / 32_000) < 0.05
    assert metadata.channels == 1
    (model,) = metadata.models
    assert metadata.model_info[model]["name"] == server.container.transcriber.model_name
    assert metadata.sha256 == hashlib.sha256(wav(audio)).hexdigest()
    (channel,) = response.results.channels
    (best,) = channel.alternatives
    assert heard(f"{FIRST} {SECOND}", best.transcript)
    assert "." in best.transcript  # punctuated (capitals are the model's choice)
    assert 0.0 < best.confidence <= 1.0
    assert_words_sane(best.words, 0.0, metadata.duration)
    assert all(w.punctuated_word for w in best.words)
    assert wer(best.transcript, " ".join(w.punctuated_word for w in best.words)) == 0.0
    first, second = response.results.utterances
    assert heard(FIRST, first.transcript) and heard(SECOND, second.transcript)
    assert first.end < second.start and second.start - first.end >= 0.8  # the 2 s pause
    assert first.channel == second.channel == 0
    assert first.id != second.id
    assert [w.word for w in first.words] + [w.word for w in second.words] == [
        w.word for w in best.words
    ]
    assert first.start == first.words[0].start and second.end == second.words[-1].end


@pytest.mark.parametrize(
    ("encoding", "rate", "audio"),
    [
        pytest.param("linear16", 16_000, lambda pcm: pcm, id="linear16-16k"),
        pytest.param("linear16", 44_100, lambda pcm: resampled(pcm, 44_100), id="linear16-44k"),
        pytest.param(
            "mulaw", 8_000, lambda pcm: g711_encode("pcmu", resampled(pcm, 8_000)), id="mulaw"
        ),
        pytest.param(
            "alaw", 8_000, lambda pcm: g711_encode("pcma", resampled(pcm, 8_000)), id="alaw"
        ),
    ],
)
def test_prerecorded_raw_audio(
    server: RunningServer, encoding: str, rate: int, audio: Callable[[bytes], bytes]
) -> None:
    body = audio(pcm16k(FIRST))
    response = client(server).listen.v1.media.transcribe_file(
        request=body,
        model="nova-2",
        encoding=encoding,
        request_options={"additional_query_parameters": {"sample_rate": rate}},
    )
    (best,) = response.results.channels[0].alternatives
    assert heard(FIRST, best.transcript)
    # No punctuate: Deepgram's plain form, and no punctuated words.
    assert best.transcript == best.transcript.lower()
    assert not any(p in best.transcript for p in ".,")
    assert all(getattr(w, "punctuated_word", None) is None for w in best.words)
    duration = response.metadata.duration
    width = 2 if encoding == "linear16" else 1
    assert abs(duration - len(body) / width / rate) < 0.05
    assert_words_sane(best.words, 0.0, duration)
    assert response.results.utterances is None


def test_prerecorded_refusals_name_the_parameter(server: RunningServer) -> None:
    sdk = client(server).listen.v1.media
    with pytest.raises(ApiError) as diarize:
        sdk.transcribe_file(request=wav(pcm16k(FIRST)), model="nova-3", diarize=True)
    assert diarize.value.status_code == 400
    assert diarize.value.body["err_code"] == "UNSUPPORTED_FEATURE"
    assert diarize.value.body["param"] == "diarize" and "diarize" in diarize.value.body["err_msg"]
    with pytest.raises(ApiError) as url:
        sdk.transcribe_url(url="http://127.0.0.1:9/audio.wav", model="nova-3")
    assert url.value.status_code == 400
    assert url.value.body["param"] == "url" and "URL" in url.value.body["err_msg"]


@pytest.mark.parametrize(
    ("query", "body", "param", "code"),
    [
        ("encoding=linear16", b"\x00\x01" * 800, "sample_rate", "INVALID_QUERY_PARAMETER"),
        ("encoding=linear16&sample_rate=1000", b"\x00" * 10, "sample_rate", None),
        ("encoding=speex&sample_rate=16000", b"\x00" * 10, "encoding", "UNSUPPORTED_FEATURE"),
        ("punctuate=maybe", b"RIFF", "punctuate", "INVALID_QUERY_PARAMETER"),
        ("model=no-such-model", b"RIFF", "model", "INVALID_QUERY_PARAMETER"),
        ("utt_split=-1", b"RIFF", "utt_split", None),
        ("summarize=v2", b"RIFF", "summarize", "UNSUPPORTED_FEATURE"),
        ("callback=http://127.0.0.1:9/", b"RIFF", "callback", "UNSUPPORTED_FEATURE"),
        ("", b"this is not audio at all", None, "INVALID_AUDIO"),
        ("", b"", None, "INVALID_AUDIO"),
        ("encoding=linear16&sample_rate=16000", b"\x01", None, "INVALID_AUDIO"),
    ],
)
def test_prerecorded_bad_input_is_a_clear_400(
    server: RunningServer, query: str, body: bytes, param: str | None, code: str | None
) -> None:
    response = httpx.post(f"{server.url}/v1/listen?{query}", content=body, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()
    assert set(error) >= {"err_code", "err_msg", "request_id"}
    assert error["err_msg"] and error["request_id"] == response.headers["x-request-id"]
    if param is not None:
        assert error["param"] == param and param in error["err_msg"]
    if code is not None:
        assert error["err_code"] == code


def test_prerecorded_detect_language(server: RunningServer) -> None:
    response = httpx.post(
        f"{server.url}/v1/listen?detect_language=true&model=nova-3",
        content=wav(pcm16k(SECOND)),
        headers={"content-type": "audio/wav"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.headers["dg-request-id"] == response.json()["metadata"]["request_id"]
    channel = response.json()["results"]["channels"][0]
    assert channel["detected_language"] == "en" and 0 < channel["language_confidence"] <= 1
    assert heard(SECOND, channel["alternatives"][0]["transcript"])


def test_token_auth_on_a_keyed_server(keyed: RunningServer) -> None:
    audio = wav(pcm16k(FIRST))
    anonymous = httpx.post(f"{keyed.url}/v1/listen", content=audio, timeout=60)
    assert anonymous.status_code == 401
    assert anonymous.json()["err_code"] == "UNAUTHORIZED"  # Deepgram's shape, also here
    with pytest.raises(ApiError) as wrong:
        client(keyed, "not-the-key").listen.v1.media.transcribe_file(request=audio)
    assert wrong.value.status_code == 401
    response = client(keyed, KEY).listen.v1.media.transcribe_file(request=audio, model="nova-3")
    assert heard(FIRST, response.results.channels[0].alternatives[0].transcript)
    bearer = httpx.post(
        f"{keyed.url}/v1/listen",
        content=audio,
        headers={"authorization": f"Bearer {KEY}"},
        timeout=60,
    )
    assert bearer.status_code == 200


# Live


async def until(socket: Any, seen: list[Any], done: Callable[[Any], bool], wait: float = 60) -> Any:
    """Messages up to and including the first for which `done` is true, added to `seen`."""
    async with asyncio.timeout(wait):
        while True:
            message = await socket.recv()
            seen.append(message)
            if done(message):
                return message


def of_type(kind: str) -> Callable[[Any], bool]:
    return lambda message: getattr(message, "type", None) == kind


async def send_audio(socket: Any, data: bytes, chunk: int = 640) -> None:
    for at in range(0, len(data), chunk):
        await socket.send_media(data[at : at + chunk])


async def closed(socket: Any, seen: list[Any] | None = None) -> ConnectionClosed:
    """The close that ends the stream, once the messages before it are read (into `seen`)."""
    try:
        async with asyncio.timeout(30):
            while True:
                message = await socket.recv()
                if seen is not None:
                    seen.append(message)
    except ConnectionClosed as close:
        return close
    raise AssertionError("unreachable")


async def test_live_linear16_interim_results_vad_events_and_utterance_end(
    server: RunningServer,
) -> None:
    speech = pcm16k(LONG)
    sent = silence(300) + speech
    async with live_client(server).listen.v1.connect(
        model="nova-3",
        encoding="linear16",
        sample_rate=16000,
        interim_results="true",
        vad_events="true",
        utterance_end_ms=1000,
        punctuate="true",
    ) as socket:
        seen: list[Any] = []
        await send_audio(socket, silence(300))
        for at in range(0, len(speech), 640):  # in real time: drafts while it is spoken (a
            await socket.send_media(speech[at : at + 640])  # burst gets none: they'd be stale)
            await asyncio.sleep(0.02)
        await until(socket, seen, lambda m: of_type("Results")(m) and not m.is_final)
        await send_audio(socket, silence(1500))
        sent += silence(1500)
        end = await until(socket, seen, of_type("UtteranceEnd"))
        await socket.send_close_stream()
        metadata = await until(socket, seen, of_type("Metadata"))
        close = await closed(socket)
    assert close.rcvd is not None and close.rcvd.code == 1000
    kinds = [m.type for m in seen]
    started = next(m for m in seen if m.type == "SpeechStarted")
    assert kinds.index("SpeechStarted") < kinds.index("Results")
    assert started.channel == [0] and 0.0 <= started.timestamp < 0.6  # preroll included
    interims = [m for m in seen if m.type == "Results" and not m.is_final]
    finals = [m for m in seen if m.type == "Results" and m.is_final]
    assert interims and len(finals) == 1
    for interim in interims:
        assert not interim.speech_final and not interim.from_finalize
        assert interim.channel_index == [0, 1] and interim.channel.alternatives[0].transcript
        assert interim.start == pytest.approx(started.timestamp)
    (final,) = finals
    assert seen.index(final) < kinds.index("UtteranceEnd") < kinds.index("Metadata")
    assert final.speech_final and not final.from_finalize
    best = final.channel.alternatives[0]
    assert heard(LONG, best.transcript)
    assert any(mark in best.transcript for mark in ".,?!")  # punctuated
    assert_words_sane(best.words, final.start, final.start + final.duration)
    assert all(w.punctuated_word for w in best.words)
    assert final.metadata.request_id == metadata.request_id
    assert final.metadata.model_info.name == server.container.transcriber.model_name
    assert end.channel == [0, 1] and end.last_word_end == best.words[-1].end
    assert metadata.channels == 1 and metadata.sha256 == hashlib.sha256(sent).hexdigest()
    assert abs(metadata.duration - len(sent) / 32_000) < 0.05


async def test_live_finalize_keepalive_and_close_stream(server: RunningServer) -> None:
    async with live_client(server).listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=16000, endpointing="false"
    ) as socket:
        seen: list[Any] = []
        await send_audio(socket, pcm16k(FIRST), chunk=3200)
        await socket.send_keep_alive()
        await socket.send_finalize()
        final = await until(socket, seen, of_type("Results"))
        await socket.send_keep_alive()
        await socket.send_finalize()  # nothing since: an empty final, still from_finalize
        empty = await until(socket, seen, of_type("Results"))
        await socket.send_close_stream()
        metadata = await until(socket, seen, of_type("Metadata"))
        close = await closed(socket)
    assert [m.type for m in seen] == ["Results", "Results", "Metadata"]  # KeepAlive: no answer
    assert final.is_final and final.from_finalize and not final.speech_final
    best = final.channel.alternatives[0]
    assert heard(FIRST, best.transcript)
    assert best.transcript == best.transcript.lower()  # no punctuate: the plain form
    assert_words_sane(best.words, final.start, final.start + final.duration)
    assert empty.is_final and empty.from_finalize and empty.channel.alternatives[0].transcript == ""
    assert metadata.duration == pytest.approx(len(pcm16k(FIRST)) / 32_000, abs=0.05)
    assert close.rcvd is not None and close.rcvd.code == 1000


@pytest.mark.parametrize(
    ("query", "audio"),
    [
        pytest.param(
            {"encoding": "opus"}, lambda pcm: ogg_opus(pcm), id="opus"
        ),  # Ogg/Opus, as a recorder writes it
        pytest.param({}, lambda pcm: ogg_opus(pcm), id="ogg-without-encoding"),
        pytest.param(
            {"encoding": "mulaw", "sample_rate": 8000},
            lambda pcm: g711_encode("pcmu", resampled(pcm, 8_000)),
            id="mulaw",
        ),
        pytest.param(
            {"encoding": "linear16", "sample_rate": 48000},
            lambda pcm: resampled(pcm, 48_000),
            id="linear16-48k",
        ),
    ],
)
async def test_live_encodings(
    server: RunningServer, query: dict[str, Any], audio: Callable[[bytes], bytes]
) -> None:
    data = audio(silence(200) + pcm16k(SECOND) + silence(900))
    async with live_client(server).listen.v1.connect(model="nova-2", **query) as socket:
        seen: list[Any] = []
        await send_audio(socket, data, chunk=4000)
        await socket.send_close_stream()
        await until(socket, seen, of_type("Metadata"))
    finals = [m for m in seen if m.type == "Results" and m.is_final]
    assert finals and not [m for m in seen if m.type == "Error"]
    transcript = " ".join(m.channel.alternatives[0].transcript for m in finals)
    assert heard(SECOND, transcript), transcript


@pytest.mark.parametrize(
    ("query", "param", "code"),
    [
        ({"encoding": "linear16", "sample_rate": 16000, "channels": 2}, "channels",
         "unsupported_feature"),
        ({"encoding": "linear16"}, "sample_rate", "invalid_query_parameter"),
        ({"encoding": "mulaw", "sample_rate": 16000}, "sample_rate", "invalid_query_parameter"),
        ({"encoding": "flac"}, "encoding", "unsupported_feature"),
        ({"diarize": "true"}, "diarize", "unsupported_feature"),
        ({"endpointing": "soon"}, "endpointing", "invalid_query_parameter"),
        ({"utterance_end_ms": "10"}, "utterance_end_ms", "invalid_query_parameter"),
        ({"interim_results": "yes"}, "interim_results", "invalid_query_parameter"),
    ],
)  # fmt: skip
async def test_live_bad_settings_refuse_the_handshake(
    server: RunningServer, query: dict[str, Any], param: str, code: str
) -> None:
    async with live_client(server).listen.v1.connect(model="nova-3", **query) as socket:
        error = await socket.recv()
        close = await closed(socket)
    assert error.type == "Error" and error.code == code and param in error.description
    assert close.rcvd is not None and close.rcvd.code == 1008
    assert close.rcvd.reason == f"{code}: {param}"


async def test_live_bad_messages_get_errors_and_the_stream_goes_on(server: RunningServer) -> None:
    async with live_client(server).listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=16000, endpointing="false"
    ) as socket:
        seen: list[Any] = []
        raw = socket._websocket  # what no SDK method sends
        await raw.send("this is not JSON")
        not_json = await until(socket, seen, of_type("Error"))
        await raw.send('{"type": "Transcribe"}')
        unknown = await until(socket, seen, of_type("Error"))
        await raw.send(b"\x00" * (300 * 1024))
        too_large = await until(socket, seen, of_type("Error"))
        await send_audio(socket, pcm16k(FIRST), chunk=3200)
        await socket.send_finalize()
        final = await until(socket, seen, of_type("Results"))
    assert not_json.variant == "SchemaError" and not_json.message == "this is not JSON"
    assert unknown.variant == "SchemaError" and "KeepAlive" in unknown.description
    assert too_large.code == "frame_too_large"
    assert heard(FIRST, final.channel.alternatives[0].transcript)


async def test_live_undecodable_audio_is_an_error_and_a_close(server: RunningServer) -> None:
    async with live_client(server).listen.v1.connect(model="nova-3") as socket:
        await socket.send_media(b"\x01\x02" * 2000)  # no encoding, and not Ogg or WebM
        error = await socket.recv()
        close = await closed(socket)
    assert (
        error.type == "Error" and error.code == "invalid_audio" and "encoding" in error.description
    )
    assert close.rcvd is not None and close.rcvd.code == 1008


async def test_live_keys_as_deepgram_clients_send_them(keyed: RunningServer) -> None:
    async with live_client(keyed, "not-the-key").listen.v1.connect(model="nova-3") as socket:
        error = await socket.recv()
        close = await closed(socket)
    assert error.code == "unauthorized"
    assert close.rcvd is not None and close.rcvd.code == 1008
    async with live_client(keyed, KEY).listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=16000
    ) as socket:
        seen: list[Any] = []
        await socket.send_keep_alive()
        await socket.send_close_stream()
        metadata = await until(socket, seen, of_type("Metadata"))
    assert metadata.duration == 0.0 and [m.type for m in seen] == ["Metadata"]
    # A browser cannot set headers: it offers the key as subprotocols, as Deepgram's SDK does.
    url = keyed.url.replace("http://", "ws://") + "/v1/listen?model=nova-3&encoding=mulaw"
    async with ws_connect(url, subprotocols=[Subprotocol("token"), Subprotocol(KEY)]) as ws:
        assert ws.subprotocol == "token"
        await ws.send('{"type": "CloseStream"}')
        assert json.loads(await ws.recv())["type"] == "Metadata"


async def test_shutdown_finishes_the_utterance_then_sends_metadata(container: Container) -> None:
    with RunningServer(sharing_models(container, Settings())) as running:
        async with live_client(running).listen.v1.connect(
            model="nova-3", encoding="linear16", sample_rate=16000
        ) as socket:
            seen: list[Any] = []
            await send_audio(socket, pcm16k(SECOND), chunk=3200)  # speech still going
            await asyncio.sleep(0.2)
            running.server.should_exit = True
            close = await closed(socket, seen)
    assert close.rcvd is not None and close.rcvd.code == 1001
    assert [m.type for m in seen][-1] == "Metadata"
    finals = [m for m in seen if m.type == "Results" and m.is_final]
    assert len(finals) == 1
    assert heard(SECOND, finals[0].channel.alternatives[0].transcript)
