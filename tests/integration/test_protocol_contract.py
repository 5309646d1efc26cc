"""One contract, every long-lived protocol: the v1 WebSocket, OpenAI's Realtime API, Deepgram's
live /v1/listen and Wyoming. Each test runs once per protocol against a real server with its
real client framing: one cap shared by all protocols, idle close, auth refusal, an oversized
frame refused before it is read, an ill-typed message answered with a coded error on a
connection that goes on, and at shutdown the protocol's last words before the close."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import struct
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from wyoming.event import Event, async_read_event, async_write_event

from entrypoints.bootstrap import Container
from entrypoints.settings import Settings
from entrypoints.wyoming.service import WyomingService
from tests.integration.conftest import RunningServer, sharing_models
from tests.integration.fake_llm import FakeLLM
from tests.integration.speech import speech_16k_pcm

KEY = "contract-key-0123456789"
PROTOCOLS = ["v1", "realtime", "deepgram", "flux", "wyoming"]
LONG_ANSWER = " ".join(f"This is sentence number {n} of a long answer." for n in range(40))


class Served:
    def __init__(self, running: RunningServer, wyoming: WyomingService) -> None:
        self.running = running
        self.port = running.port
        self.wyoming_port = wyoming.port


@contextlib.contextmanager
def serve(container: Container, llm: FakeLLM, **settings: Any) -> Iterator[Served]:
    built = sharing_models(
        container,
        Settings(wyoming_uri="tcp://127.0.0.1:0", llm_base_url=llm.url, **settings),
    )
    wyoming = WyomingService(built)
    wyoming.attach()
    with RunningServer(built) as running:
        yield Served(running, wyoming)


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM(LONG_ANSWER) as fake:
        fake.token_delay = 0.02
        yield fake


class Peer:
    """One protocol's client: its framing, a valid request, an ill-typed one."""

    name = ""

    async def open(self, served: Served, key: str | None = None) -> None:
        raise NotImplementedError

    async def valid(self) -> None:
        """A request every protocol answers at once, and its answer."""
        raise NotImplementedError

    async def ill_typed(self) -> str:
        """A message of the right kind with a field of the wrong type: its error's code."""
        raise NotImplementedError

    async def next_error(self) -> tuple[str, int | None]:
        """The next error's code, and the close code if the connection then closed."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class Socket(Peer):
    path = ""
    socket: ClientConnection

    def url(self, served: Served) -> str:
        return f"ws://127.0.0.1:{served.port}{self.path}"

    async def open(self, served: Served, key: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.socket = await websockets.connect(
            self.url(served), additional_headers=headers, max_size=None
        )

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(message))

    async def receive(self, wait: float = 30) -> dict[str, Any]:
        async with asyncio.timeout(wait):
            answer: dict[str, Any] = json.loads(await self.socket.recv())
            return answer

    async def until(self, kind: str, wait: float = 30) -> dict[str, Any]:
        async with asyncio.timeout(wait):
            while (message := await self.receive(wait)).get("type") != kind:
                pass
            return message

    def code_of(self, error: dict[str, Any]) -> str:
        return str(error["code"])

    async def next_error(self) -> tuple[str, int | None]:
        error = await self.until(self.error_type)
        try:
            async with asyncio.timeout(5):
                while True:
                    await self.socket.recv()
        except ConnectionClosed as closed:
            return self.code_of(error), closed.rcvd.code if closed.rcvd else None
        except TimeoutError:
            return self.code_of(error), None

    error_type = "error"

    async def close(self) -> None:
        await self.socket.close()


class V1(Socket):
    name, path = "v1", "/ws/voice"

    async def valid(self) -> None:
        await self.send({"type": "stt_start", "id": "ok"})
        await self.until("stt_started")
        await self.send({"type": "stt_stop"})
        await self.until("stt_stopped")

    async def ill_typed(self) -> str:
        await self.send({"type": "text", "text": 5})
        return self.code_of(await self.until("error"))


class Realtime(Socket):
    name, path = "realtime", "/v1/realtime?model=gpt-realtime"

    async def open(self, served: Served, key: str | None = None) -> None:
        await super().open(served, key)

    async def valid(self) -> None:
        await self.send({"type": "session.update", "session": {"instructions": "Be brief."}})
        await self.until("session.updated")

    async def ill_typed(self) -> str:
        await self.send({"type": "session.update", "session": {"instructions": 5}})
        return self.code_of(await self.until("error"))

    def code_of(self, error: dict[str, Any]) -> str:
        return str(error["error"]["code"])


class Deepgram(Socket):
    name, path = "deepgram", "/v1/listen?encoding=linear16&sample_rate=16000"
    error_type = "Error"

    async def valid(self) -> None:
        await self.send({"type": "Finalize"})  # nothing to finalize: an empty final
        final = await self.until("Results")
        assert final["is_final"] and final["from_finalize"]

    async def ill_typed(self) -> str:
        await self.send({"type": 5})
        return self.code_of(await self.until("Error"))


class Flux(Socket):
    name, path = "flux", "/v2/listen?model=flux-general-en&encoding=linear16&sample_rate=16000"
    error_type = "Error"

    async def valid(self) -> None:
        await self.send({"type": "Configure", "thresholds": {}})  # nothing changed: success
        await self.until("ConfigureSuccess")

    async def ill_typed(self) -> str:
        await self.send({"type": "Configure", "thresholds": 5})
        return self.code_of(await self.until("Error"))

    def code_of(self, error: dict[str, Any]) -> str:
        return str(error["code"]).lower()


class Wyoming(Peer):
    name = "wyoming"

    async def open(self, served: Served, key: str | None = None) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", served.wyoming_port)

    async def send(self, kind: str, data: dict[str, Any] | None = None) -> None:
        await async_write_event(Event(kind, data or {}), self.writer)

    async def until(self, kind: str, wait: float = 30) -> Event:
        async with asyncio.timeout(wait):
            while (event := await async_read_event(self.reader)) is not None:
                if event.type == kind:
                    return event
        raise ConnectionClosed(None, None)

    async def valid(self) -> None:
        await self.send("describe")
        await self.until("info")

    async def ill_typed(self) -> str:
        await self.send("audio-start", {"rate": "16000", "width": 2, "channels": 1})
        return str((await self.until("error")).data["code"])

    async def next_error(self) -> tuple[str, int | None]:
        error = await self.until("error")
        async with asyncio.timeout(5):
            closed = await self.reader.read() == b""  # the server closes its side
        return str(error.data["code"]), 1000 if closed else None

    async def close(self) -> None:
        self.writer.close()


PEERS: dict[str, type[Peer]] = {"v1": V1, "realtime": Realtime, "deepgram": Deepgram,
                                "flux": Flux, "wyoming": Wyoming}  # fmt: skip


async def peer(name: str, served: Served, key: str | None = None) -> Peer:
    made = PEERS[name]()
    await made.open(served, key)
    return made


# The shared cap


@pytest.fixture(scope="module")
def capped(container: Container, llm: FakeLLM) -> Iterator[Served]:
    with serve(container, llm, ws_max_connections=len(PROTOCOLS)) as served:
        yield served


@pytest.mark.parametrize("name", PROTOCOLS)
async def test_one_cap_counts_every_protocols_connections(capped: Served, name: str) -> None:
    """One connection of each protocol fills a cap of that many: one more is refused, whatever
    its protocol; once one closes, it is admitted."""
    held = [await peer(other, capped) for other in PROTOCOLS]
    for each in held:
        await each.valid()  # admitted
    extra = await peer(name, capped)
    code, close = await extra.next_error()
    assert code == "too_many_connections"
    assert close in (1008, 1000)  # Wyoming's TCP has no codes: it just closes
    await held[0].close()
    await asyncio.sleep(0.5)
    again = await peer(name, capped)
    await again.valid()
    for each in [again, *held[1:]]:
        await each.close()


# Idle connections


@pytest.fixture(scope="module")
def impatient(container: Container, llm: FakeLLM) -> Iterator[Served]:
    with serve(container, llm, ws_idle_seconds=1.0) as served:
        yield served


@pytest.mark.parametrize("name", PROTOCOLS)
async def test_an_idle_connection_is_told_and_closed(impatient: Served, name: str) -> None:
    client = await peer(name, impatient)
    await client.valid()
    code, close = await client.next_error()  # sent nothing more: idle
    assert code == "idle_timeout" and close == 1000


# Authentication


@pytest.fixture(scope="module")
def keyed(container: Container, llm: FakeLLM) -> Iterator[Served]:
    with serve(container, llm, api_keys=(KEY,)) as served:
        yield served


@pytest.mark.parametrize("name", ["v1", "realtime", "deepgram", "flux"])
async def test_no_key_no_connection(keyed: Served, name: str) -> None:
    """Wyoming has no authentication: its clients share the anonymous limits instead
    (test_anonymous_limits.py)."""
    refused = await peer(name, keyed)
    code, close = await refused.next_error()
    assert (code, close) == ("unauthorized", 1008)
    wrong = await peer(name, keyed, key="not-" + KEY)
    assert (await wrong.next_error()) == ("unauthorized", 1008)
    admitted = await peer(name, keyed, key=KEY)
    await admitted.valid()
    await admitted.close()


# Bad messages


@pytest.fixture(scope="module")
def plain(container: Container, llm: FakeLLM) -> Iterator[Served]:
    with serve(container, llm) as served:
        yield served


@pytest.mark.parametrize("name", PROTOCOLS)
async def test_an_ill_typed_message_gets_a_coded_error_and_the_connection_goes_on(
    plain: Served, name: str
) -> None:
    client = await peer(name, plain)
    for _ in range(3):
        code = await client.ill_typed()
        assert code in ("invalid_request", "invalid_value", "invalid_message"), code
        await client.valid()
    await client.close()


def raw_websocket_header(length: int) -> bytes:
    """A masked binary frame's header announcing `length` bytes (none of which follow)."""
    return b"\x82" + bytes([0x80 | 127]) + struct.pack(">Q", length) + os.urandom(4)


async def handshake(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    writer.write(request.encode())
    await reader.readuntil(b"\r\n\r\n")  # 101 Switching Protocols
    return reader, writer


@pytest.mark.parametrize(("name", "announced"), [
    ("v1", 200 * 1024 * 1024), ("realtime", 2 * 1024 * 1024), ("deepgram", 2 * 1024 * 1024),
    ("flux", 2 * 1024 * 1024),
])  # fmt: skip
async def test_an_oversized_frame_is_refused_before_it_is_read(
    plain: Served, name: str, announced: int
) -> None:
    """Only the frame's header is sent: the server can only answer (close 1009, message too
    big) if it refused the frame from its announced length, without waiting to read it."""
    reader, writer = await handshake(plain.port, PEERS[name].path)  # type: ignore[attr-defined]
    writer.write(raw_websocket_header(announced))
    await writer.drain()
    async with asyncio.timeout(5):
        data = await reader.read(4096)
        while data[:1] != b"\x88":  # skip what came first (a session.created, say)
            opcode_length = data[1] & 0x7F
            skip = 2 + (opcode_length if opcode_length < 126 else
                        struct.unpack(">H", data[2:4])[0] + 2)  # fmt: skip
            data = data[skip:] or await reader.read(4096)
    code = struct.unpack(">H", data[2:4])[0]
    writer.close()
    assert code == 1009


async def test_wyoming_refuses_an_oversized_announcement_before_reading_it(plain: Served) -> None:
    client = await peer("wyoming", plain)
    assert isinstance(client, Wyoming)
    header = {"type": "audio-chunk", "data": {"rate": 16000, "width": 2, "channels": 1},
              "payload_length": 200 * 1024 * 1024}  # fmt: skip
    client.writer.write(json.dumps(header).encode() + b"\n")  # and not one byte of payload
    await client.writer.drain()
    code, close = await client.next_error()
    assert code == "invalid_request" and close is not None


# Shutdown


async def last_words(name: str, served: Served) -> list[str]:
    """Work in flight, then the server stops: what the client hears until the close."""
    client = await peer(name, served)
    speech = speech_16k_pcm("Please call me back tomorrow morning.")
    if isinstance(client, V1):
        await client.send({"type": "stt_start", "id": "last"})
        await client.until("stt_started")
        await client.socket.send(speech)
    elif isinstance(client, Realtime):
        await client.until("session.created")
        await client.send({"type": "session.update",
                           "session": {"output_modalities": ["text"]}})  # fmt: skip
        await client.until("session.updated")
        await client.send({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Tell me a long story."}]}})  # fmt: skip
        await client.send({"type": "response.create"})
        await client.until("response.output_text.delta")
    elif isinstance(client, Deepgram | Flux):
        for at in range(0, len(speech), 3200):
            await client.socket.send(speech[at : at + 3200])
    else:
        assert isinstance(client, Wyoming)
        await client.send("audio-start", {"rate": 16000, "width": 2, "channels": 1})
        for at in range(0, len(speech), 3200):
            chunk = Event("audio-chunk", {"rate": 16000, "width": 2, "channels": 1},
                          speech[at : at + 3200])  # fmt: skip
            await async_write_event(chunk, client.writer)
    await asyncio.sleep(0.3)
    served.running.server.should_exit = True
    heard: list[str] = []
    async with asyncio.timeout(30):
        if isinstance(client, Wyoming):
            while (event := await async_read_event(client.reader)) is not None:
                heard.append(event.type)
            heard.append("closed")
        else:
            assert isinstance(client, Socket)
            try:
                while True:
                    heard.append(json.loads(await client.socket.recv()).get("type"))
            except ConnectionClosed as closed:
                heard.append(f"closed {closed.rcvd.code if closed.rcvd else None}")
    return heard


LAST_WORDS = {
    "v1": ["closing", "final", "stt_stopped", "closed 1001"],
    "realtime": ["response.done", "closed 1001"],
    "deepgram": ["Results", "Metadata", "closed 1001"],
    "flux": ["TurnInfo", "closed 1001"],  # the turn in progress ends: EndOfTurn
    "wyoming": ["transcript", "transcript-stop", "closed"],
}


@pytest.mark.parametrize("name", PROTOCOLS)
async def test_shutdown_says_the_last_words_then_closes(
    container: Container, llm: FakeLLM, name: str
) -> None:
    with serve(container, llm) as served:
        heard = await last_words(name, served)
    said = [kind for kind in heard if kind in LAST_WORDS[name]]
    for word in LAST_WORDS[name][:-1]:
        assert word in said, heard
    assert heard[-1] == LAST_WORDS[name][-1], heard
    positions = [max(i for i, k in enumerate(heard) if k == w) for w in LAST_WORDS[name]]
    assert positions == sorted(positions), heard  # in order, the close last


async def test_a_v1_speech_stream_in_flight_ends_with_its_audio_end(
    container: Container, llm: FakeLLM
) -> None:
    """Text streamed but never flushed when the server stops: the stream still ends with
    `audio_end` (finished, or cancelled when the drain time runs short) before the close."""
    with serve(container, llm) as served:
        client = await peer("v1", served)
        assert isinstance(client, V1)
        await client.send({"type": "text_delta", "id": "story", "text": LONG_ANSWER})
        await client.until("audio_start")
        served.running.server.should_exit = True
        heard: list[str] = []
        async with asyncio.timeout(30):
            try:
                while True:
                    message = await client.socket.recv()
                    if isinstance(message, str):
                        heard.append(json.loads(message)["type"])
            except ConnectionClosed as closed:
                heard.append(f"closed {closed.rcvd.code if closed.rcvd else None}")
    assert "closing" in heard and "audio_end" in heard, heard
    assert heard.index("audio_end") < len(heard) - 1 and heard[-1] == "closed 1001", heard


async def test_new_clients_are_refused_once_shutdown_begins(
    container: Container, llm: FakeLLM
) -> None:
    """From the moment the server starts draining, no protocol takes a new client: Wyoming's
    listener is closed (or answers `shutting_down`), as HTTP and WebSocket stop accepting."""
    with serve(container, llm, api_keys=()) as served:
        busy = await peer("v1", served)  # work in flight keeps the drain going for a while
        await busy.send({"type": "text_delta", "id": "long", "text": LONG_ANSWER})  # type: ignore[attr-defined]
        await busy.until("audio_start")  # type: ignore[attr-defined]
        served.running.server.should_exit = True
        await asyncio.sleep(0.5)  # the drain has begun
        try:
            late = await peer("wyoming", served)
        except OSError:
            return  # refused at the socket
        await late.send("describe")  # type: ignore[attr-defined]
        async with asyncio.timeout(10):
            answer = await async_read_event(late.reader)  # type: ignore[attr-defined]
        assert answer is None or (answer.type == "error" and answer.data["code"] == "shutting_down")
