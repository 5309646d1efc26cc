"""Deepgram Flux (/v2/listen), driven by the official `deepgram-sdk` listen.v2 client against
a real server on loopback, with Piper's speech, the real model and the real turn model."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from deepgram import AsyncDeepgramClient
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from entrypoints.deepgram.live import max_frame_bytes
from tests.integration.conftest import RunningServer
from tests.integration.speech import SENTENCES, heard
from tests.integration.test_deepgram_api import closed, environment, pcm16k, silence

FIRST, SECOND = SENTENCES[0], SENTENCES[1]


def flux(server: RunningServer) -> AsyncDeepgramClient:
    return AsyncDeepgramClient(api_key="unused", environment=environment(server))


async def real_time(socket: Any, pcm: bytes) -> None:
    """20 ms frames at real speed (faster only would leave the turn model no pause to judge)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for at in range(0, len(pcm), 640):
        await socket.send_media(pcm[at : at + 640])
        await asyncio.sleep(max(0.0, start + (at + 640) / 32_000 - loop.time()))


async def turns_until_closed(socket: Any, send: Any) -> list[Any]:
    """Every message, while `send` streams; then CloseStream and the close."""
    seen: list[Any] = []
    reader = asyncio.ensure_future(closed(socket, seen))
    await send
    await socket.send_close_stream()
    close = await reader
    assert close.rcvd is not None and close.rcvd.code == 1000
    return seen


def events(seen: list[Any]) -> list[tuple[str, int]]:
    return [(m.event, m.turn_index) for m in seen if m.type == "TurnInfo" and m.event != "Update"]


async def test_turns_start_and_end_with_their_transcripts(server: RunningServer) -> None:
    audio = silence(300) + pcm16k(FIRST) + silence(2000) + pcm16k(SECOND) + silence(1500)
    async with flux(server).listen.v2.connect(
        model="flux-general-en", encoding="linear16", sample_rate=16000, eot_timeout_ms=1500
    ) as socket:
        seen = await turns_until_closed(socket, real_time(socket, audio))
    connected = seen[0]
    assert connected.type == "Connected" and connected.request_id and connected.sequence_id == 0
    assert [m.sequence_id for m in seen] == list(range(len(seen)))
    assert events(seen) == [
        ("StartOfTurn", 0),
        ("EndOfTurn", 0),
        ("StartOfTurn", 1),
        ("EndOfTurn", 1),
    ]
    ends = [m for m in seen if getattr(m, "event", None) == "EndOfTurn"]
    for end, said in zip(ends, (FIRST, SECOND), strict=True):
        assert heard(said, end.transcript), end.transcript
        assert [w.word for w in end.words] == end.transcript.split()
        assert all(0.0 <= w.confidence <= 1.0 for w in end.words)
        assert end.audio_window_start < end.audio_window_end <= len(audio) / 32_000
        assert end.trigger in ("model", "timeout") and 0.0 <= end.end_of_turn_confidence <= 1.0
    assert ends[0].audio_window_end < ends[1].audio_window_start


async def test_a_pause_mid_turn_is_an_eager_end_then_the_turn_resumes(
    server: RunningServer,
) -> None:
    # Never ended by the model (eot_threshold 1.0); the pause is shorter than the timeout,
    # and long enough for the turn model's verdict to come on a loaded machine (it may wait
    # behind the early final): a verdict after the speech resumed is no eager end.
    audio = pcm16k(FIRST) + silence(3000) + pcm16k(SECOND) + silence(5500)
    async with flux(server).listen.v2.connect(
        model="flux-general-en",
        encoding="linear16",
        sample_rate=16000,
        eot_threshold=1.0,
        eager_eot_threshold=0.3,
        eot_timeout_ms=5000,
    ) as socket:
        seen = await turns_until_closed(socket, real_time(socket, audio))
    got = events(seen)
    assert got[:3] == [("StartOfTurn", 0), ("EagerEndOfTurn", 0), ("TurnResumed", 0)], got
    assert got[-1] == ("EndOfTurn", 0) and ("StartOfTurn", 1) not in got
    eager = next(m for m in seen if getattr(m, "event", None) == "EagerEndOfTurn")
    assert heard(FIRST, eager.transcript) and 0.3 <= eager.end_of_turn_confidence < 1.0
    end = seen[-1]
    assert end.event == "EndOfTurn" and end.trigger == "timeout"
    assert heard(f"{FIRST} {SECOND}", end.transcript), end.transcript


async def test_no_eager_events_unless_asked(server: RunningServer) -> None:
    audio = pcm16k(FIRST) + silence(1200) + pcm16k(SECOND) + silence(300)
    async with flux(server).listen.v2.connect(
        model="flux-general-en", encoding="linear16", sample_rate=16000, eot_threshold=1.0
    ) as socket:
        seen = await turns_until_closed(socket, real_time(socket, audio))
    got = events(seen)  # CloseStream ends the turn in progress
    assert got == [("StartOfTurn", 0), ("EndOfTurn", 0)] and seen[-1].trigger == "manual"


async def test_configure_changes_thresholds_mid_stream_and_refuses_bad_values(
    server: RunningServer,
) -> None:
    async with flux(server).listen.v2.connect(
        model="flux-general-en", encoding="linear16", sample_rate=16000, keyterm="Deepgram"
    ) as socket:
        assert (await socket.recv()).type == "Connected"
        good = {"eot_threshold": 0.8, "eager_eot_threshold": 0.5, "eot_timeout_ms": 3000}
        await socket.send_configure({"type": "Configure", "thresholds": good})
        success = await socket.recv()
        assert success.type == "ConfigureSuccess" and success.keyterms == ["Deepgram"]
        assert dict(success.thresholds) == good | {"eot_timeout_ms": 3000}
        for bad in (
            {"thresholds": {"eot_threshold": 1.5}},
            {"thresholds": {"eager_eot_threshold": 0.9}},  # above eot_threshold (0.8)
            {"thresholds": {"eot_timeout_ms": 100}},
            {"keyterms": ["Flux"]},
        ):
            await socket.send_configure({"type": "Configure", **bad})
            failure = await socket.recv()
            assert failure.type == "ConfigureFailure" and failure.code and failure.description
        await socket.send_configure({"type": "Configure", "thresholds": {}})
        unchanged = await socket.recv()
        assert unchanged.type == "ConfigureSuccess" and dict(unchanged.thresholds) == good
        seen = await turns_until_closed(socket, real_time(socket, pcm16k(FIRST) + silence(500)))
    assert heard(FIRST, seen[-1].transcript)


async def test_hostile_messages_get_coded_errors_and_the_stream_goes_on(
    server: RunningServer,
) -> None:
    url = server.url.replace("http", "ws") + "/v2/listen?model=flux-general-en&encoding=linear16"
    async with ws_connect(url + "&sample_rate=16000", max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "Connected"
        for text in ("{not json", '{"type": "Bogus"}', '{"type": "Configure", "thresholds": 3}'):
            await ws.send(text)
            error = json.loads(await ws.recv())
            assert error["type"] == "Error" and error["code"] == "INVALID_REQUEST"
        await ws.send(b"\x00" * (max_frame_bytes() // 2 + 2))  # over the audio frame bound
        error = json.loads(await ws.recv())
        assert error["type"] == "Error" and error["code"] == "FRAME_TOO_LARGE"
        await ws.send(pcm16k(FIRST) + silence(300))
        await ws.send('{"type": "CloseStream"}')
        messages = [json.loads(m) async for m in ws]
        assert heard(FIRST, messages[-1]["transcript"]) and messages[-1]["event"] == "EndOfTurn"
    for query in ("&sample_rate=abc", "&sample_rate=96000", "&eot_threshold=2", "&model=nova-3"):
        async with ws_connect(url.replace("linear16", "linear16" + query)) as ws:
            error = json.loads(await ws.recv())
            assert error["type"] == "Error" and error["code"] in (
                "INVALID_QUERY_PARAMETER",
                "INVALID_VALUE",
            )
            try:
                await ws.recv()
                raise AssertionError("the stream should be closed")
            except ConnectionClosed as close:
                assert close.rcvd is not None and close.rcvd.code == 1008


async def test_a_frame_over_the_route_bound_is_refused_unread(server: RunningServer) -> None:
    url = server.url.replace("http", "ws") + "/v2/listen?model=flux-general-en"
    async with ws_connect(url, max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "Connected"
        await ws.send(b"\x00" * (max_frame_bytes() + 1))
        try:
            await asyncio.wait_for(ws.recv(), 10)
            raise AssertionError("the stream should be closed")
        except ConnectionClosed as close:
            assert close.rcvd is not None and close.rcvd.code == 1009
