"""Wyoming, Home Assistant's protocol, driven by the `wyoming` package's own client against a
running service (WYOMING_URI): describe, transcribe (streamed transcripts), synthesize (whole
and streamed text), and hostile peers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

from domain.events import CacheLookedUp, RequestReceived
from entrypoints.bootstrap import Container
from entrypoints.settings import Settings
from entrypoints.wyoming.service import WyomingService
from tests.integration.conftest import RunningServer, sharing_models
from tests.integration.speech import speech_16k_pcm, wer
from tests.integration.test_streaming import to_wav

SENTENCE = "Turn on the kitchen lights and set the temperature to twenty degrees."


class Wyoming:
    def __init__(self, server: RunningServer, service: WyomingService) -> None:
        self.server = server
        self.port = service.port


@pytest.fixture(scope="module")
def wyoming(container: Container) -> Iterator[Wyoming]:
    built = sharing_models(container, Settings(wyoming_uri="tcp://127.0.0.1:0"))
    service = WyomingService(built)
    service.attach()
    with RunningServer(built) as running:
        yield Wyoming(running, service)


def client(wyoming: Wyoming) -> AsyncTcpClient:
    return AsyncTcpClient("127.0.0.1", wyoming.port)


async def until(connection: AsyncTcpClient, kind: str, seen: list[Event]) -> Event:
    async with asyncio.timeout(60):
        while (event := await connection.read_event()) is not None:
            seen.append(event)
            if event.type == kind:
                return event
    raise AssertionError(f"closed before {kind}: {[e.type for e in seen]}")


async def send_audio(connection: AsyncTcpClient, pcm: bytes, rate: int = 16_000) -> None:
    await connection.write_event(AudioStart(rate=rate, width=2, channels=1).event())
    step = rate * 2 // 10  # 100 ms chunks, as a satellite sends them
    for at in range(0, len(pcm), step):
        chunk = AudioChunk(rate=rate, width=2, channels=1, audio=pcm[at : at + step])
        await connection.write_event(chunk.event())
    await connection.write_event(AudioStop().event())


async def test_describe_lists_models_voices_and_streaming(wyoming: Wyoming) -> None:
    async with client(wyoming) as connection:
        await connection.write_event(Describe().event())
        info = Info.from_event(await until(connection, "info", []))
    (asr,) = info.asr
    assert asr.supports_transcript_streaming and asr.models
    assert "en" in asr.models[0].languages
    (tts,) = info.tts
    assert tts.supports_synthesize_streaming
    assert [v.name for v in tts.voices] == ["en_US-joe-medium"]
    assert tts.voices[0].languages == ["en_US"]
    assert asr.attribution.name == "voicepipe" and asr.version


async def test_transcribe_gives_streamed_chunks_then_the_transcript(wyoming: Wyoming) -> None:
    pcm = speech_16k_pcm(SENTENCE)
    async with client(wyoming) as connection:
        seen: list[Event] = []
        await connection.write_event(Transcribe(language="en").event())
        await send_audio(connection, pcm)
        transcript = Transcript.from_event(await until(connection, "transcript", seen))
        stop = await until(connection, "transcript-stop", seen)
        # The connection goes on: a second utterance.
        await send_audio(connection, speech_16k_pcm("Good night."))
        second = Transcript.from_event(await until(connection, "transcript", seen))
    assert wer(SENTENCE, transcript.text) <= 0.2  # "20" for "twenty" is one of 12
    assert transcript.language == "en"
    kinds = [e.type for e in seen]
    assert kinds[0] == "transcript-start" and TranscriptStop.is_type(stop.type)
    chunks = [TranscriptChunk.from_event(e).text for e in seen[: kinds.index("transcript")]
              if e.type == "transcript-chunk"]  # fmt: skip
    assert "".join(chunks) == transcript.text  # the chunks add up to the transcript
    assert TranscriptStart.is_type(seen[0].type)
    assert wer("Good night.", second.text) <= 0.5


async def test_synthesize_speaks_the_text_and_a_repeat_is_cached(wyoming: Wyoming) -> None:
    text = "The front door is locked."
    audio = []
    async with client(wyoming) as connection:
        for _ in range(2):
            seen: list[Event] = []
            voice = SynthesizeVoice(name="en_US-joe-medium")
            await connection.write_event(Synthesize(text=text, voice=voice).event())
            start = AudioStart.from_event(await until(connection, "audio-start", seen))
            await until(connection, "audio-stop", seen)
            pcm = b"".join(AudioChunk.from_event(e).audio for e in seen if e.type == "audio-chunk")
            audio.append((start.rate, pcm))
    (rate, pcm), (_, again) = audio
    assert rate == 22_050 and 1.0 < len(pcm) / (2 * rate) < 4.0
    assert again == pcm  # the repeat is the cached audio, byte for byte
    heard = await asyncio.to_thread(_stt, wyoming, to_wav(pcm, rate))
    assert wer(text, heard) <= 0.2
    events = [e for _, e in await wyoming.server.container.event_log.read(None, 100_000)]
    wyoming_ids = {
        e.pipeline_id for e in events if isinstance(e, RequestReceived) and e.transport == "wyoming"
    }
    hits = [e for e in events if isinstance(e, CacheLookedUp) and e.pipeline_id in wyoming_ids]
    assert [h.hit for h in hits][-2:] == [False, True]


def _stt(wyoming: Wyoming, wav: bytes) -> str:
    with httpx.Client(base_url=wyoming.server.url, timeout=60) as http:
        return str(http.post("/api/stt", files={"file": ("a.wav", wav)}).json()["text"])


async def test_streamed_text_is_spoken_as_it_arrives(wyoming: Wyoming) -> None:
    words = [
        "Sure.",
        "The",
        "garage",
        "door",
        "is",
        "now",
        "closed,",
        "and",
        "the",
        "alarm",
        "is",
        "set",
        "for",
        "the",
        "night.",
    ]
    async with client(wyoming) as connection:
        seen: list[Event] = []
        await connection.write_event(SynthesizeStart(voice=SynthesizeVoice()).event())
        for index, word in enumerate(words):
            await connection.write_event(
                SynthesizeChunk(text=(" " if index else "") + word).event()
            )
        first = await until(connection, "audio-chunk", seen)  # the first sentence, before the end
        await connection.write_event(Synthesize(text=" ".join(words)).event())  # ignored
        await connection.write_event(SynthesizeStop().event())
        await until(connection, "synthesize-stopped", seen)
    kinds = [e.type for e in seen]
    assert kinds.count("audio-start") == 1 and kinds.count("audio-stop") == 1
    assert kinds.index("audio-stop") < kinds.index("synthesize-stopped")
    assert SynthesizeStopped.is_type(seen[-1].type)
    pcm = b"".join(AudioChunk.from_event(e).audio for e in seen if e.type == "audio-chunk")
    assert AudioChunk.from_event(first).audio
    heard = await asyncio.to_thread(_stt, wyoming, to_wav(pcm, 22_050))
    assert wer(" ".join(words), heard) <= 0.25


async def raw(wyoming: Wyoming, data: bytes) -> list[dict[str, Any]]:
    """Sends bytes as they are; returns the events answered until the server closes or
    goes quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", wyoming.port)
    writer.write(data)
    await writer.drain()
    answers = []
    try:
        async with asyncio.timeout(5):
            while line := await reader.readline():
                header = json.loads(line)
                data_length = header.get("data_length") or 0
                if data_length:
                    header["data"] = json.loads(await reader.readexactly(data_length))
                if header.get("payload_length"):
                    await reader.readexactly(header["payload_length"])
                answers.append(header)
    except TimeoutError:
        answers.append({"type": "(still open)"})
    writer.close()
    return answers


def header(kind: str, **fields: Any) -> bytes:
    return json.dumps({"type": kind, **fields}).encode() + b"\n"


async def test_hostile_peers_get_errors_and_bounded_reads(wyoming: Wyoming) -> None:
    # A payload announced at 1 GB is refused before a byte of it is read; the stream is then
    # out of step, so the connection ends.
    huge = await raw(wyoming, header("audio-chunk", data={"rate": 16000, "width": 2, "channels": 1},
                                      payload_length=10**9))  # fmt: skip
    assert huge[0]["type"] == "error" and "payload" in huge[0]["data"]["text"]
    assert huge[-1]["type"] != "(still open)"
    garbage = await raw(wyoming, b"this is not json\n")
    assert garbage[0]["type"] == "error" and garbage[-1]["type"] != "(still open)"
    long_line = await raw(wyoming, b"x" * 200_000 + b"\n")
    assert long_line[0]["type"] == "error"
    # Well-formed but wrong: an error each, and the connection stays open.
    wrong = await raw(
        wyoming,
        header("audio-chunk", data={"rate": 16000, "width": 2, "channels": 1}, payload_length=2)
        + b"\x00\x00"
        + header("audio-start", data={"rate": 16000, "width": 1, "channels": 1})
        + header("audio-start", data={"rate": 4000, "width": 2, "channels": 1})
        + header("no-such-event")
        + header("synthesize", data={"text": ""})
        + header("synthesize", data={"text": "x" * 10_000})
        + header("synthesize", data={"text": "hi", "voice": {"name": "../../etc/passwd"}})
        + header("synthesize-chunk", data={"text": "orphan"})
        + header("audio-stop")
        + header("describe"),
    )
    kinds = [a["type"] for a in wrong]
    assert kinds == ["error"] * 9 + ["info", "(still open)"], wrong
    codes = [a["data"].get("code") for a in wrong[:9]]
    assert codes == [
        "invalid_request", "invalid_request", "invalid_request", "invalid_request",
        "empty_text", "text_too_long", "unknown_voice", "invalid_request", "invalid_request",
    ]  # fmt: skip
    assert isinstance(Error.from_event(Event(type="error", data=wrong[0]["data"])).text, str)


async def test_zeroconf_advertises_the_server_for_home_assistant(container: Container) -> None:
    from zeroconf import IPVersion
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

    settings = Settings(wyoming_uri="tcp://127.0.0.1:0", wyoming_zeroconf="voicepipe-test")
    built = sharing_models(container, settings)
    service = WyomingService(built)
    service.attach()
    with RunningServer(built):
        browser = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
        try:
            found = AsyncServiceInfo("_wyoming._tcp.local.", "voicepipe-test._wyoming._tcp.local.")
            assert await found.async_request(browser.zeroconf, 5000)
        finally:
            await browser.async_close()
        assert found.port == service.port and found.parsed_addresses() == ["127.0.0.1"]
        async with AsyncTcpClient("127.0.0.1", found.port) as connection:  # and it answers
            await connection.write_event(Describe().event())
            assert (await until(connection, "info", [])).type == "info"


def test_voicepipe_serve_starts_wyoming_from_its_setting() -> None:
    """The command a user runs: WYOMING_URI in the environment, Wyoming beside HTTP."""
    from bench.harness import free_port, running_service

    port = free_port()
    with running_service(WYOMING_URI=f"tcp://127.0.0.1:{port}"):

        async def describe() -> Info:
            async with AsyncTcpClient("127.0.0.1", port) as connection:
                await connection.write_event(Describe().event())
                return Info.from_event(await until(connection, "info", []))

        info = asyncio.run(describe())
    assert info.asr and info.tts
