"""Wyoming against hostile and careless peers (issue 25): ill-typed or malformed events get a
coded `invalid_request` error (never a traceback) and the connection goes on; a client that
leaves mid-synthesis logs nothing at error level; with API keys set, Wyoming's clients (the
anonymous principal) are held to the anonymous limits: STT seconds, and commands paced per
connection."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog
from wyoming.event import Event, async_write_event

from entrypoints.bootstrap import Container, bootstrap
from entrypoints.settings import Settings
from entrypoints.wyoming.service import WyomingService
from tests.integration.conftest import RunningServer, SteppedClock, midday_utc, sharing_models
from tests.integration.speech import speech_16k_pcm

KEY = "wyoming-hostile-k3y-0123456789"
Answer = dict[str, Any]


@pytest.fixture(scope="module", autouse=True)
def structlog_to_logging() -> Iterator[None]:
    """structlog's records go through the standard library's logging, where caplog sees
    them (with their level, and their exception when one is logged)."""
    saved = structlog.get_config()

    def to_logging(_: Any, __: str, event: MutableMapping[str, Any]) -> tuple[Any, ...]:
        exc_info = event.pop("exc_info", None)
        return (repr(dict(event)),), ({"exc_info": exc_info} if exc_info else {})

    structlog.configure(
        processors=[to_logging],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    try:
        yield
    finally:
        structlog.configure(**saved)


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Records at ERROR or above, or carrying an exception (a traceback in the log)."""
    return [
        f"{r.levelname} {r.name}: {r.getMessage()[:200]}"
        + (f" [{r.exc_info[0].__name__}]" if r.exc_info and r.exc_info[0] else "")
        for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info
    ]


@pytest.fixture(scope="module")
def open_wyoming(container: Container) -> Iterator[int]:
    """Wyoming on a service with no keys; its port."""
    built = sharing_models(container, Settings(wyoming_uri="tcp://127.0.0.1:0"))
    service = WyomingService(built)
    service.attach()
    with RunningServer(built):
        yield service.port


class Keyed:
    def __init__(self, port: int, clock: SteppedClock) -> None:
        self.port = port
        self.clock = clock


@pytest.fixture(scope="module")
def keyed_wyoming(container: Container) -> Iterator[Keyed]:
    """Wyoming on a service with a key (ANONYMOUS_LIMITS is `auto`): 3 STT seconds a day; a
    clock of its own, that a test may stop."""
    settings = Settings(
        api_keys=(f"operator:{KEY}",),
        stt_seconds_per_day=3,
        wyoming_uri="tcp://127.0.0.1:0",
        stt_turn_detection="silence",
    )
    clock = SteppedClock(midday_utc())
    built = bootstrap(
        settings,
        synthesizers=container.speech.providers.synthesizers,
        transcriber=container.transcriber,
        voice_activity=container.voice_activity,
        turns=container.listen.turns,
        clock=clock,
    )
    service = WyomingService(built)
    service.attach()
    with RunningServer(built):
        yield Keyed(service.port, clock)


class Peer:
    """A raw TCP Wyoming client: writes events (or any bytes), reads answers as sent."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, *, small_buffers: bool = False) -> Peer:
        """`small_buffers`: the client holds little unread (4 KiB in the kernel, 8 in its
        reader), so a server that speaks to it while it reads nothing soon waits to write."""
        if not small_buffers:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            return cls(reader, writer)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        return cls(reader, writer)

    async def send(self, kind: str, data: dict[str, Any] | None = None,
                   payload: bytes | None = None) -> None:  # fmt: skip
        await async_write_event(Event(type=kind, data=data or {}, payload=payload), self.writer)

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read(self) -> Answer | None:
        """The next event (its data merged in), or None when the server closed."""
        line = await self.reader.readline()
        if not line:
            return None
        header = json.loads(line)
        data = header.get("data") or {}
        if header.get("data_length"):
            data = {**data, **json.loads(await self.reader.readexactly(header["data_length"]))}
        if header.get("payload_length"):
            header["payload"] = await self.reader.readexactly(header["payload_length"])
        header["data"] = data
        return header  # type: ignore[no-any-return]

    async def until(self, *kinds: str, wait: float = 30) -> list[Answer]:
        """Answers up to and including the first of `kinds`; the last is {"type": "(closed)"}
        or {"type": "(silent)"} if the server closed or said nothing more within `wait`."""
        answers: list[Answer] = []
        try:
            async with asyncio.timeout(wait):
                while (answer := await self.read()) is not None:
                    answers.append(answer)
                    if answer["type"] in kinds:
                        return answers
                answers.append({"type": "(closed)"})
        except (TimeoutError, ConnectionError):
            answers.append({"type": "(silent)"})
        return answers

    def close(self) -> None:
        self.writer.close()


def block(kind: str, data: bytes) -> bytes:
    """An event whose data block (announced by `data_length`) is `data`, as it is."""
    return json.dumps({"type": kind, "data_length": len(data)}).encode() + b"\n" + data


AUDIO = {"rate": 16_000, "width": 2, "channels": 1}
BAD_EVENTS: dict[str, tuple[list[tuple[str, dict[str, Any], bytes | None]], bytes | None, str]] = {
    # name: (events sent, the last of them the bad one; or the raw bytes of a bad event, sent
    # after them; a word the error's message must have)
    "audio-start rate as a string": ([("audio-start", {**AUDIO, "rate": "16000"}, None)], None,
                                     "rate"),
    "audio-start rate null": ([("audio-start", {**AUDIO, "rate": None}, None)], None, "rate"),
    "audio-start without rate": ([("audio-start", {"width": 2, "channels": 1}, None)], None,
                                 "rate"),
    "audio-start without width": ([("audio-start", {"rate": 16_000, "channels": 1}, None)], None,
                                  "width"),
    "audio-chunk without rate": ([("audio-start", AUDIO, None),
                                  ("audio-chunk", {"width": 2, "channels": 1}, bytes(3200))],
                                 None, "rate"),
    "audio-chunk at another rate": ([("audio-start", AUDIO, None),
                                     ("audio-chunk", {**AUDIO, "rate": 8000}, bytes(3200))],
                                    None, "16000 hz"),
    "synthesize without text": ([("synthesize", {}, None)], None, "text"),
    "synthesize with a number as text": ([("synthesize", {"text": 5}, None)], None, "text"),
    "synthesize-chunk with a number": ([("synthesize-start", {}, None),
                                        ("synthesize-chunk", {"text": 5}, None)], None, "text"),
    "data block not JSON": ([], block("synthesize", b"this is not json"), "json"),
    "data block not UTF-8": ([], block("synthesize", b'{"text": "caf\xe9 \xff\xfe"}'), "json"),
    "data block nested 30,000 deep": ([], block("synthesize", b"[" * 30_000 + b"]" * 30_000),
                                      "json"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_EVENTS))
async def test_bad_events_get_coded_errors_and_the_connection_goes_on(
    open_wyoming: int, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An ill-typed field (a string, null or missing where a number or text belongs) or a data
    block that is not JSON (not UTF-8, nested too deeply): an `error` with code
    `invalid_request` naming the problem, then `describe` still gets `info`, and nothing is
    logged at error level. The old code answered `internal_error` with a logged traceback, or
    closed the connection without a word."""
    events, raw, word = BAD_EVENTS[case]
    peer = await Peer.connect(open_wyoming)
    try:
        for kind, data, payload in events:
            await peer.send(kind, data, payload)
        if raw is not None:
            await peer.send_raw(raw)
        await peer.send("describe")
        answers = await peer.until("info", wait=15)
    finally:
        peer.close()
    await asyncio.sleep(0.2)  # anything the server logs about it
    kinds = [a["type"] for a in answers]
    assert kinds == ["error", "info"], answers
    error = answers[0]["data"]
    assert error.get("code") == "invalid_request", error
    assert word in error["text"].lower(), error
    assert errors_logged(caplog) == []


async def test_a_client_leaving_mid_synthesis_logs_no_errors(
    open_wyoming: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that hangs up while its text is being spoken is no error of the server's: no
    record at error level (the old code logged `unhandled error in a wyoming event` with a
    RuntimeError traceback: its next write met the closed connection), and the server serves
    the next client. The client reads the first `audio-chunk`, then nothing for a while (the
    server, speaking on, waits to write), then resets the connection."""
    text = " ".join(
        f"This is sentence number {n}, one of many that take a while to speak." for n in range(20)
    )
    peer = await Peer.connect(open_wyoming, small_buffers=True)
    await peer.send("synthesize", {"text": text})
    answers = await peer.until("audio-chunk", "error", wait=30)
    assert answers[-1]["type"] == "audio-chunk", answers
    await asyncio.sleep(1.5)
    peer.writer.transport.abort()  # gone, mid-synthesis
    await asyncio.sleep(2)
    again = await Peer.connect(open_wyoming)
    try:
        await again.send("describe")
        assert [a["type"] for a in await again.until("info", wait=15)] == ["info"]
    finally:
        again.close()
    assert errors_logged(caplog) == []


async def test_anonymous_stt_seconds_are_limited_when_keys_are_set(keyed_wyoming: Keyed) -> None:
    """3 STT seconds a day for the anonymous clients: of two ~6 s utterances, at most one is
    transcribed, and the refusal is `rate_limited` (the old code transcribed without limit)."""
    pcm = speech_16k_pcm(
        "Please turn on the lights in the kitchen and in the hallway, close the garage door, "
        "and set the heating to twenty degrees for the rest of the evening."
    )
    seconds = len(pcm) / 32_000  # 16 kHz, 16-bit
    assert seconds >= 4.5, seconds
    outcomes = []
    for _ in range(2):
        peer = await Peer.connect(keyed_wyoming.port)
        try:
            await peer.send("transcribe", {"language": "en"})
            await peer.send("audio-start", AUDIO)
            for at in range(0, len(pcm), 3200):  # 100 ms chunks, as a satellite sends them
                await peer.send("audio-chunk", AUDIO, pcm[at : at + 3200])
            await peer.send("audio-stop")
            answers = await peer.until("transcript", "error", wait=60)
        finally:
            peer.close()
        last = answers[-1]
        outcomes.append((last["type"], last["data"].get("code"), last["data"].get("text")))
    refused = [o for o in outcomes if o[0] == "error"]
    assert refused, outcomes
    assert all(code == "rate_limited" for _, code, _ in refused), outcomes
    assert outcomes[-1][0] == "error", outcomes  # the second, at least, is refused


async def test_a_describe_flood_is_paced_per_connection(keyed_wyoming: Keyed) -> None:
    """400 `describe`s at once on one connection: the burst (200) are answered `info`, the
    rest `rate_limited` errors; a second later (commands refill at 50 a second) `describe`
    gets `info` again. The old code answered all 400. The service's clock is held still
    during the flood, so the count is exact however slow the machine."""
    peer = await Peer.connect(keyed_wyoming.port)
    try:
        with keyed_wyoming.clock.stopped() as clock:
            await peer.send_raw(b'{"type": "describe"}\n' * 400)
            answers = []
            for _ in range(400):
                answer = await peer.until("info", "error", wait=30)
                assert answer[-1]["type"] in ("info", "error"), answer
                answers.append(answer[-1])
            clock.advance(1.0)
        await peer.send("describe")
        after = await peer.until("info", "error", wait=15)
    finally:
        peer.close()
    kinds = [a["type"] for a in answers]
    infos, errors = kinds.count("info"), kinds.count("error")
    codes = {a["data"].get("code") for a in answers if a["type"] == "error"}
    assert (infos, errors) == (200, 200), (infos, errors)
    assert codes == {"rate_limited"}, codes
    assert after[-1]["type"] == "info", after
