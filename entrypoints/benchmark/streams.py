"""Real-time speech streams over /ws/voice, and how long each utterance waits for its final."""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from entrypoints.benchmark.speech import FRAME_BYTES, RATE, seconds_of, silence, spoken_utterances

FRAME_SECONDS = FRAME_BYTES / (2 * RATE)
FINALS_WAIT_SECONDS = 30.0  # after the last frame: what a stream still owes us


@dataclass
class StreamLags:
    """One real-time stream's utterances: the wait from each one's last speech frame to its final.

    `lags_ms` is measured by the client (the last speech frame sent → the final received), in
    utterance order; `end_of_speech_ms` is the server's own figure from the same finals.
    `missed` counts utterances no final covered; `errors` the error codes the stream received.
    """

    lags_ms: list[float] = field(default_factory=list)
    end_of_speech_ms: list[float] = field(default_factory=list)
    missed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Spoken:
    start: float  # seconds from the start of the stream, in audio
    end: float
    sent_at: float  # perf_counter() when its last frame went out


@dataclass(frozen=True)
class _Final:
    start: float
    end: float
    received_at: float
    end_of_speech_ms: float | None


async def hold_streams(
    url: str,
    streams: int,
    seconds: float,
    *,
    headers: dict[str, str] | None = None,
    speech: list[bytes] | None = None,
    gap: float = 1.0,
) -> list[StreamLags]:
    """Run `streams` concurrent real-time streams against the service at `url` for ~`seconds`.

    Each stream sends utterances (16 kHz PCM; spoken by the service unless `speech` is given)
    in 20 ms frames at real-time pace, `gap` seconds of silence after each, starting at a
    different utterance and staggered over one utterance so they do not all pause at once.
    Returns each stream's final lags.
    """
    headers = headers or {}
    clips = speech or await spoken_utterances(url, headers)
    cycle = statistics.mean(seconds_of(c) for c in clips) + gap
    ws_url = url.replace("http", "ws", 1) + "/ws/voice"
    rotations = [clips[i % len(clips) :] + clips[: i % len(clips)] for i in range(streams)]
    runs = [
        _stream(ws_url, headers, rotation, gap, seconds, delay=i * cycle / streams)
        for i, rotation in enumerate(rotations)
    ]
    return list(await asyncio.gather(*runs))


async def _stream(
    ws_url: str, headers: dict[str, str], clips: list[bytes], gap: float, seconds: float,
    delay: float,
) -> StreamLags:  # fmt: skip
    await asyncio.sleep(delay)
    finals: list[_Final] = []
    errors: list[str] = []
    async with connect(ws_url, additional_headers=headers, max_size=None, open_timeout=30) as ws:
        await ws.send(json.dumps({"type": "stt_start", "sample_rate": RATE}))
        answer = json.loads(await ws.recv())
        if answer.get("type") != "stt_started":
            return StreamLags(missed=1, errors=[str(answer.get("code", answer.get("type")))])
        receiver = asyncio.create_task(_receive(ws, finals, errors))
        spoken = await _speak(ws, clips, gap, seconds)
        await ws.send(json.dumps({"type": "stt_stop"}))
        try:
            await asyncio.wait_for(receiver, FINALS_WAIT_SECONDS)
        except TimeoutError:
            receiver.cancel()
            errors.append("finals_timed_out")
    return _lags(spoken, finals, errors)


async def _speak(
    ws: ClientConnection, clips: list[bytes], gap: float, seconds: float
) -> list[_Spoken]:
    """Utterances and pauses in 20 ms frames at real-time pace, until `seconds` of audio."""
    pause, spoken, position = silence(gap), [], 0.0
    next_at = time.perf_counter()
    for turn in itertools.count():
        clip = clips[turn % len(clips)]
        clip += b"\x00" * (-len(clip) % FRAME_BYTES)
        if turn and position + seconds_of(clip) > seconds:
            break
        for audio in (clip, pause):
            for i in range(0, len(audio), FRAME_BYTES):
                await ws.send(audio[i : i + FRAME_BYTES])
                next_at += FRAME_SECONDS
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            if audio is clip:
                spoken.append(_Spoken(position, position + seconds_of(clip), time.perf_counter()))
            position += seconds_of(audio)
    return spoken


async def _receive(ws: ClientConnection, finals: list[_Final], errors: list[str]) -> None:
    try:
        async for frame in ws:
            if isinstance(frame, bytes):
                continue
            message: dict[str, Any] = json.loads(frame)
            kind = message.get("type")
            if kind == "final":
                eos = message.get("end_of_speech_ms")
                start, end = float(message.get("start", 0.0)), float(message.get("end", 0.0))
                server = None if eos is None else float(eos)
                finals.append(_Final(start, end, time.perf_counter(), server))
            elif kind == "error":
                errors.append(str(message.get("code")))
            elif kind == "stt_stopped":
                return
    except ConnectionClosed:
        errors.append("connection_closed")


def _lags(spoken: list[_Spoken], finals: list[_Final], errors: list[str]) -> StreamLags:
    """Each utterance's lag: to the last final whose audio overlaps it (a split one ends later)."""
    result = StreamLags(errors=errors)
    for utterance in spoken:
        covering = [f for f in finals if f.start < utterance.end and f.end > utterance.start]
        if not covering:
            result.missed += 1
            continue
        final = max(covering, key=lambda f: f.received_at)
        result.lags_ms.append(1000 * (final.received_at - utterance.sent_at))
        if final.end_of_speech_ms is not None:
            result.end_of_speech_ms.append(final.end_of_speech_ms)
    return result
