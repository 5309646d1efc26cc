"""The listening session: bounded frames, pace in seconds of audio, exact charges."""

from __future__ import annotations

import pytest

from application.access import RateLimited
from application.listening_session import (
    AudioTooFast,
    FrameTooLarge,
    ListeningSession,
    StartListening,
)
from application.ports import Clock
from application.transcribe_stream import Failed, Final, Partial, StreamEvent
from domain.errors import AudioTooLarge, InvalidRequest
from entrypoints.settings import Settings
from tests.unit.conftest import FakeWorld, build_world
from tests.unit.fakes import StillClock

FRAME = 256 * 1024  # the largest frame a client may send


def keyed_world(stt_seconds_per_day: int = 36_000) -> FakeWorld:
    settings = Settings(
        api_keys=("alice:alice-secret",),
        stt_seconds_per_day=stt_seconds_per_day,
        max_audio_bytes=1_000_000,
    )
    return build_world(settings)


def open_session(
    world: FakeWorld, encoding: str = "pcm_s16le", rate: int = 16_000, clock: Clock | None = None
) -> tuple[ListeningSession, list[Partial | Final | Failed]]:
    heard: list[Partial | Final | Failed] = []

    async def emit(item: StreamEvent) -> None:
        if isinstance(item, Partial | Final | Failed):
            heard.append(item)

    access = world.container.access
    listen = world.container.listen
    if clock is not None:
        listen = StartListening(
            transcriber=listen.transcriber,
            transcribe=listen.transcribe,
            voice_activity=listen.voice_activity,
            converter=listen.converter,
            access=access,
            clock=clock,
            limits=listen.limits,
        )
    session = listen.open(
        stream_id="s1",
        encoding=encoding,
        sample_rate=rate,
        language=None,
        principal=access.authenticate("alice-secret"),
        emit=emit,
    )
    return session, heard


async def charged(world: FakeWorld) -> float:
    access = world.container.access
    key_id = access.authenticate("alice-secret").key_id
    return await access.store.add(f"{key_id}:stt_seconds", 0, 86_400, world.clock.now())


@pytest.mark.parametrize("rate", [16_000, 8_000])
async def test_streamed_audio_is_charged_in_full(rate: int) -> None:
    """30 frames of 256 KiB: 245.8 s at 16 kHz, 491.5 s at 8 kHz, each second charged."""
    world = keyed_world()
    session, _ = open_session(world, rate=rate)
    for _ in range(30):
        await session.feed(b"\x00\x00" * (FRAME // 2))
        world.clock.t += 60  # real time passes: well inside the pace
    await session.stop(finish=True)
    seconds = 30 * FRAME / 2 / rate
    assert await charged(world) == pytest.approx(seconds, abs=0.01)


async def test_the_pace_counts_seconds_of_audio_not_bytes() -> None:
    """At 8 kHz a byte is twice the audio it is at 16 kHz: the limit is 10x real time."""
    world = keyed_world()
    clock = StillClock()
    session, _ = open_session(world, rate=8_000, clock=clock)
    second = b"\x01\x00" * 8_000
    accepted = 0
    with pytest.raises(AudioTooFast, match="10x real time"):
        for _ in range(200):  # counted in bytes of 16 kHz audio, 120 of these would pass
            await session.feed(second)
            accepted += 1
    assert accepted == 60  # the burst
    clock.t += 1.0  # a second later, ten more seconds fit
    for _ in range(10):
        await session.feed(second)
    await session.stop(finish=False)
    assert await charged(world) == pytest.approx(accepted + 10)  # refused audio is not charged


async def test_a_quota_stops_the_stream_and_charges_no_more_than_it() -> None:
    world = keyed_world(stt_seconds_per_day=20)
    session, _ = open_session(world)
    fed = 0.0
    with pytest.raises(RateLimited, match="STT audio seconds"):
        for _ in range(100):
            await session.feed(b"\x00\x00" * 4_000)  # 0.25 s
            fed += 0.25
            world.clock.t += 1
    await session.stop(finish=False)
    assert fed == pytest.approx(20.0)
    assert await charged(world) == pytest.approx(20.0)


async def test_frames_and_containers_are_bounded() -> None:
    world = keyed_world()
    session, _ = open_session(world)
    with pytest.raises(FrameTooLarge):
        await session.feed(b"\x00" * (FRAME + 1))
    container, _ = open_session(world, encoding="ogg")
    for _ in range(3):
        await container.feed(b"\x00" * 250_000)
        world.clock.t += 60
    with pytest.raises(AudioTooLarge):
        await container.feed(b"\x00" * 250_001)  # past max_audio_bytes (1,000,000)
    await session.stop(finish=False)
    await container.stop(finish=False)


@pytest.mark.parametrize("frame", [b"", b"\x01", b"\x01\x02\x03"])
async def test_empty_and_odd_frames_at_8_khz_are_fine(frame: bytes) -> None:
    world = keyed_world()
    session, _ = open_session(world, rate=8_000)
    await session.feed(b"\x01\x00" * 800)
    await session.feed(frame)
    await session.feed(b"\x01\x00" * 800)
    await session.stop(finish=True)
    assert await charged(world) == pytest.approx(0.2, abs=0.001)


async def test_bad_settings_are_refused_before_anything_opens() -> None:
    world = keyed_world()
    with pytest.raises(InvalidRequest, match="encoding"):
        open_session(world, encoding="mp3")
    with pytest.raises(InvalidRequest, match="sample_rate"):
        open_session(world, rate=96_000)


async def test_stopping_closes_the_audio_stream_once() -> None:
    world = keyed_world()
    session, heard = open_session(world)
    await session.feed(b"\x01\x00" * 16_000)  # a second of "speech" for the fake VAD
    await session.stop(finish=True)
    await session.stop(finish=True)
    stream = world.container.listen.converter.streams[-1]  # type: ignore[attr-defined]
    assert stream.closed and stream.finished
    assert any(isinstance(item, Final) for item in heard)


async def test_the_listening_session_finalizes_like_the_stream() -> None:
    world = keyed_world()
    session, heard = open_session(world)
    assert not await session.finalize()
    await session.feed(b"\x01\x00" * 16 * 640)  # speech to the fake VAD
    assert await session.finalize()
    await session.stop(finish=True)
    assert [(f.utterance, f.reason) for f in heard if isinstance(f, Final)] == [(0, "client")]
