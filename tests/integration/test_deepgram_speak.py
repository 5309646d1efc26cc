"""Deepgram's /v1/speak, driven end to end by the official `deepgram-sdk` (`speak.v1`, REST and
WebSocket) against a real server on loopback: real Piper speech, heard back by the real
Whisper model, and the key's characters charged exactly."""

from __future__ import annotations

import asyncio
import io
import struct
import wave
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from deepgram.core.api_error import ApiError
from deepgram.speak.v1.types import SpeakV1Text
from websockets.exceptions import ConnectionClosed

from adapters.g711 import decode as g711_decode
from entrypoints.bootstrap import Container
from entrypoints.settings import Settings
from tests.integration.conftest import RunningServer, sharing_models
from tests.integration.speech import SENTENCES, heard
from tests.integration.test_deepgram_api import client, live_client, wav

KEY, POOR = "dg-speak-k3y-0123456789", "dg-speak-poor-k3y-0123"
DAY = 3_000  # TTS characters a day, per key
FIRST, SECOND = SENTENCES[0], SENTENCES[1]


@pytest.fixture(scope="module")
def keyed(container: Container) -> Iterator[RunningServer]:
    settings = Settings(api_keys=(KEY, POOR), tts_chars_per_day=DAY)
    with RunningServer(sharing_models(container, settings)) as running:
        yield running


def used(server: RunningServer, key: str = KEY) -> int:
    usage = httpx.get(f"{server.url}/v1/usage", headers={"authorization": f"Bearer {key}"})
    assert usage.status_code == 200, usage.text
    return int(usage.json()["tts_characters"]["used"])


async def settled(server: RunningServer, ok: Callable[[int], bool], key: str = KEY) -> int:
    """Usage once it is `ok`: a stream settles its characters just after its last message."""
    for _ in range(200):
        if ok(now := used(server, key)):
            return now
        await asyncio.sleep(0.05)
    return now


def transcript(server: RunningServer, audio: bytes) -> str:
    """What the service's own model hears in `audio` (any container)."""
    response = client(server, KEY).listen.v1.media.transcribe_file(request=audio, model="nova-3")
    return str(response.results.channels[0].alternatives[0].transcript)


def wav_facts(audio: bytes) -> tuple[int, int, int, float]:
    with wave.open(io.BytesIO(audio), "rb") as reader:
        frames = reader.getnframes()
        rate = reader.getframerate()
        return reader.getnchannels(), reader.getsampwidth(), rate, frames / rate


# REST


def test_rest_default_is_a_24k_wav_of_the_text_with_deepgram_headers(keyed: RunningServer) -> None:
    before = used(keyed)
    audio_client = client(keyed, KEY).speak.v1.audio
    with audio_client.with_raw_response.generate(text=FIRST, model="aura-2-thalia-en") as raw:
        headers = raw.headers
        audio = b"".join(raw.data)
    assert headers["content-type"] == "audio/wav"
    assert headers["dg-model-name"] == "aura-2-thalia-en"
    assert headers["dg-request-id"] and headers["dg-model-uuid"]
    assert headers["dg-char-count"] == str(len(FIRST))
    channels, width, rate, seconds = wav_facts(audio)
    assert (channels, width, rate) == (1, 2, 24_000) and 1.5 < seconds < 6
    assert heard(FIRST, transcript(keyed, audio))
    assert used(keyed) - before == len(FIRST)  # charged exactly the text


@pytest.mark.parametrize(
    ("query", "content_type", "as_wav"),
    [
        ({"encoding": "linear16", "container": "none", "sample_rate": 16000},
         "audio/l16;rate=16000", lambda data: wav(data, 16_000)),
        ({"encoding": "mulaw", "sample_rate": 8000}, "audio/wav", lambda data: data),
        ({"encoding": "alaw", "container": "none"}, "audio/x-alaw-basic;rate=8000",
         lambda data: wav(g711_decode("pcma", data), 8_000)),
        ({"encoding": "mp3", "bit_rate": 48000}, "audio/mpeg", lambda data: data),
        ({"encoding": "opus", "container": "ogg"}, "audio/ogg", lambda data: data),
        ({"encoding": "flac"}, "audio/flac", lambda data: data),
        ({"encoding": "aac"}, "audio/aac", lambda data: data),
    ],
    ids=["linear16-raw-16k", "mulaw-wav", "alaw-raw", "mp3", "opus", "flac", "aac"],
)  # fmt: skip
def test_rest_encodings_are_real_speech(
    keyed: RunningServer, query: dict[str, Any], content_type: str, as_wav: Any
) -> None:
    with client(keyed, KEY).speak.v1.audio.with_raw_response.generate(
        text=SECOND, model="aura-asteria-en", **query
    ) as raw:
        headers, audio = raw.headers, b"".join(raw.data)
    assert headers["content-type"] == content_type
    assert heard(SECOND, transcript(keyed, as_wav(audio)))
    if query.get("container") == "none" and query["encoding"] == "linear16":
        assert 1.5 < len(audio) / 32_000 < 6  # 16 kHz s16le: the rate asked
    if query["encoding"] == "mulaw":
        tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", audio[20:36])
        assert (tag, channels, rate, bits) == (7, 1, 8_000, 8)  # mu-law, a byte a sample


@pytest.mark.parametrize(
    ("query", "body", "status", "code"),
    [
        ({"model": "nova-3"}, {"text": FIRST}, 400, "INVALID_QUERY_PARAMETER"),
        ({"encoding": "wma"}, {"text": FIRST}, 400, "INVALID_QUERY_PARAMETER"),
        ({"encoding": "linear16", "sample_rate": 44100}, {"text": FIRST}, 400,
         "INVALID_QUERY_PARAMETER"),
        ({"encoding": "mulaw", "sample_rate": 16000}, {"text": FIRST}, 400,
         "INVALID_QUERY_PARAMETER"),
        ({"encoding": "mp3", "sample_rate": 24000}, {"text": FIRST}, 400,
         "INVALID_QUERY_PARAMETER"),
        ({"encoding": "mp3", "container": "wav"}, {"text": FIRST}, 400, "INVALID_QUERY_PARAMETER"),
        ({"encoding": "mp3", "bit_rate": 999}, {"text": FIRST}, 400, "INVALID_QUERY_PARAMETER"),
        ({"encoding": "linear16", "bit_rate": 48000}, {"text": FIRST}, 400,
         "INVALID_QUERY_PARAMETER"),
        ({"sample_rate": "fast"}, {"text": FIRST}, 400, "INVALID_QUERY_PARAMETER"),
        ({"speed": "9"}, {"text": FIRST}, 400, "INVALID_REQUEST"),
        ({"callback": "https://example.com/x"}, {"text": FIRST}, 400, "UNSUPPORTED_FEATURE"),
        ({}, {"text": "   "}, 400, "EMPTY_TEXT"),
        ({}, {"text": "a" * 6000}, 413, "TEXT_TOO_LONG"),
        ({}, {"words": FIRST}, 400, "INVALID_REQUEST"),
        ({}, b"{not json", 400, "INVALID_JSON"),
    ],
)  # fmt: skip
def test_rest_refusals_are_coded_and_free(
    keyed: RunningServer, query: dict[str, Any], body: Any, status: int, code: str
) -> None:
    before = used(keyed)
    response = httpx.post(
        f"{keyed.url}/v1/speak",
        params=query,
        headers={"authorization": f"Token {KEY}", "content-type": "application/json"},
        **({"content": body} if isinstance(body, bytes) else {"json": body}),
        timeout=60,
    )
    assert response.status_code == status, response.text
    error = response.json()
    assert error["err_code"] == code and error["err_msg"] and "request_id" in error
    assert used(keyed) == before  # a refused request costs nothing


def test_rest_quota_and_key_as_the_sdk_meets_them(keyed: RunningServer) -> None:
    with pytest.raises(ApiError) as wrong:
        b"".join(client(keyed, "not-the-key").speak.v1.audio.generate(text=FIRST))
    assert wrong.value.status_code == 401
    with pytest.raises(ApiError) as over:  # more than a day's characters: refused, free
        b"".join(client(keyed, POOR).speak.v1.audio.generate(text="Hello there. " * 240))
    assert over.value.status_code == 429 and over.value.body["err_code"] == "RATE_LIMITED"
    assert used(keyed, POOR) == 0


# WebSocket


async def messages_until(socket: Any, kind: str, wait: float = 60) -> tuple[bytes, list[Any]]:
    """Audio and messages up to and including the first `kind`."""
    audio, seen = bytearray(), []
    async with asyncio.timeout(wait):
        while True:
            message = await socket.recv()
            if isinstance(message, bytes):
                audio += message
                continue
            seen.append(message)
            if getattr(message, "type", None) == kind:
                return bytes(audio), seen


async def speak(socket: Any, text: str) -> None:
    await socket.send_text(SpeakV1Text(type="Speak", text=text))


async def closed(socket: Any) -> ConnectionClosed:
    try:
        async with asyncio.timeout(60):
            while True:
                await socket.recv()
    except ConnectionClosed as close:
        return close
    raise AssertionError("unreachable")


async def test_ws_speak_flush_gives_audio_then_flushed_and_close_drains(
    keyed: RunningServer,
) -> None:
    before = used(keyed)
    async with live_client(keyed, KEY).speak.v1.connect(
        model="aura-2-thalia-en", encoding="linear16", sample_rate="16000"
    ) as socket:
        metadata = await socket.recv()
        assert metadata.type == "Metadata" and metadata.model_name == "aura-2-thalia-en"
        assert metadata.request_id and metadata.model_uuid and metadata.model_version
        await speak(socket, "The quick brown fox")
        await speak(socket, " jumps over the lazy dog.")
        await socket.send_flush()
        first, seen = await messages_until(socket, "Flushed")
        assert [m.type for m in seen] == ["Flushed"] and seen[0].sequence_id == 0
        await speak(socket, SECOND)
        await socket.send_close()  # the rest is spoken, then a normal close
        second = bytearray()
        try:
            async with asyncio.timeout(60):
                async for message in socket:
                    assert isinstance(message, bytes), message
                    second += message
        except ConnectionClosed:
            pass
    assert 1.5 < len(first) / 32_000 < 6  # 16 kHz s16le
    assert heard(FIRST, transcript(keyed, wav(first)))
    assert heard(SECOND, transcript(keyed, wav(bytes(second))))
    spoken = before + len(FIRST) + len(SECOND)  # exactly what was spoken
    assert await settled(keyed, lambda n: n == spoken) == spoken


async def test_ws_mulaw_and_flushes_in_order(keyed: RunningServer) -> None:
    async with live_client(keyed, KEY).speak.v1.connect(encoding="mulaw") as socket:
        assert (await socket.recv()).type == "Metadata"
        await speak(socket, FIRST)
        await socket.send_flush()
        await socket.send_flush()  # nothing more: its Flushed still comes after the audio
        audio, seen = await messages_until(socket, "Flushed")
        _, more = await messages_until(socket, "Flushed")
    assert [m.sequence_id for m in seen + more] == [0, 1]
    assert 1.5 < len(audio) / 8_000 < 6  # a byte a sample at 8 kHz
    assert heard(FIRST, transcript(keyed, wav(g711_decode("pcmu", audio), 8_000)))


async def test_ws_clear_stops_speech_and_refunds_the_unspoken(keyed: RunningServer) -> None:
    before = used(keyed)
    long = " ".join(SENTENCES * 4)
    async with live_client(keyed, KEY).speak.v1.connect(model="aura-asteria-en") as socket:
        assert (await socket.recv()).type == "Metadata"
        await speak(socket, "Nothing of this is said")
        await socket.send_clear()  # before any speech: all of it given back
        audio, seen = await messages_until(socket, "Cleared")
        assert audio == b"" and seen[0].sequence_id == 0
        assert await settled(keyed, lambda n: n == before) == before
        await speak(socket, long)
        await socket.send_flush()
        while not await socket.recv():  # the first audio
            pass
        await socket.send_clear()
        _, seen = await messages_until(socket, "Cleared")
        # The Flush is answered when its audio stops, cut short: then the Clear.
        assert [(m.type, m.sequence_id) for m in seen] == [("Flushed", 1), ("Cleared", 2)]
        charged = await settled(keyed, lambda n: n < before + len(long)) - before
        assert 0 < charged < len(long)  # what was spoken, not what was sent
        await speak(socket, SECOND)
        await socket.send_flush()
        audio, seen = await messages_until(socket, "Flushed")
        assert seen[0].sequence_id == 3 and audio
    total = charged + len(SECOND)
    assert await settled(keyed, lambda n: n == before + total) == before + total


async def test_ws_hostile_messages_get_warnings_and_the_connection_goes_on(
    keyed: RunningServer,
) -> None:
    before = used(keyed)
    async with live_client(keyed, KEY).speak.v1.connect() as socket:
        raw = socket._websocket
        assert (await socket.recv()).type == "Metadata"
        hostile: list[str | bytes] = [
            "not JSON", b"\x00\x01binary", '{"type": "Speak", "text": 5}', '{"type": "Sing"}',
            '{"type": "Speak", "text": ""}', '{"type": "Speak", "text": "' + "a" * 6000 + '"}',
        ]  # fmt: skip
        for frame in hostile:
            await raw.send(frame)
        codes = []
        for _ in hostile:
            _, (warning,) = await messages_until(socket, "Warning")
            codes.append(warning.code)
        assert codes == ["invalid_request"] * 4 + ["empty_text", "text_too_long"]
        for _ in range(300):  # a flood: past the burst, the message rate refuses
            await raw.send('{"type": "Speak", "text": "never "}')
        await asyncio.sleep(1.0)  # the rate allows more again
        await socket.send_clear()
        _, seen = await messages_until(socket, "Cleared")
        refused = [m.code for m in seen if m.type == "Warning"]
        assert refused and set(refused) == {"rate_limited"}
        assert await settled(keyed, lambda n: n == before) == before  # nothing spoken
        await speak(socket, FIRST)
        await socket.send_flush()
        audio, _ = await messages_until(socket, "Flushed")
    assert heard(FIRST, transcript(keyed, wav(audio, 24_000)))


async def test_ws_over_the_quota_is_refused_and_free(keyed: RunningServer) -> None:
    async with live_client(keyed, POOR).speak.v1.connect() as socket:
        assert (await socket.recv()).type == "Metadata"
        await speak(socket, "Hi there. " * 310)
        _, (warning,) = await messages_until(socket, "Warning")
        assert warning.code == "rate_limited"
    assert used(keyed, POOR) == 0


@pytest.mark.parametrize(
    ("query", "param"),
    [({"model": "nova-3"}, "model"), ({"encoding": "mp3"}, "encoding"),
     ({"encoding": "linear16", "sample_rate": "44100"}, "sample_rate"),
     ({"encoding": "alaw", "sample_rate": "16000"}, "sample_rate")],
)  # fmt: skip
async def test_ws_bad_settings_refuse_the_handshake(
    keyed: RunningServer, query: dict[str, Any], param: str
) -> None:
    async with live_client(keyed, KEY).speak.v1.connect(**query) as socket:
        error = await socket.recv()
        close = await closed(socket)
    assert error.type == "Error" and param in error.description
    assert close.rcvd is not None and close.rcvd.code == 1008
    assert close.rcvd.reason.endswith(f": {param}")
