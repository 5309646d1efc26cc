"""SynthesizeSpeech with fakes: the exact events of each path, and each step's failure."""

from __future__ import annotations

from typing import Any

import pytest

from application.synthesize_speech import SpeakCommand
from domain.errors import EmptyText, StepFailed, TextTooLong, UnknownVoice, UnsupportedFormat
from domain.events import RequestFailed, StepDegraded
from tests.unit.conftest import FakeWorld, build_world
from tests.unit.fakes import FailingCache

MISS = [
    "RequestReceived",
    "CacheLookedUp",
    "SpeechSynthesized",
    "AudioProcessed",
    "AudioEncoded",
    "SentimentAnalysed",
    "RequestCompleted",
]


async def speak(world: FakeWorld, text: str = "a good day", **fields: Any) -> Any:
    command = SpeakCommand(text=text, **fields)
    return await world.container.synthesize.execute(command, pipeline_id="p1", transport="test")


async def test_cache_miss_records_every_step(world: FakeWorld) -> None:
    result = await speak(world)
    assert result.cached is False
    assert await world.recorded_types() == MISS
    events = await world.recorded()
    assert {e.pipeline_id for e in events} == {"p1"}
    assert events[1].hit is False  # type: ignore[union-attr]
    assert events[2].provider == "fake" and events[2].voice == "alice"  # type: ignore[union-attr]


async def test_cache_hit_skips_synthesis(world: FakeWorld) -> None:
    first = await speak(world)
    second = await speak(world, text="  a   good day ")  # same text once normalized
    assert second.cached is True
    assert second.audio == first.audio
    assert second.audio.sentiment.label == "positive"
    assert len(world.synthesizer.spoken) == 1
    assert (await world.recorded_types())[len(MISS) :] == [
        "RequestReceived",
        "CacheLookedUp",
        "RequestCompleted",
    ]
    assert (await world.recorded())[-2].hit is True  # type: ignore[union-attr]


async def test_cache_key_separates_format_and_voice(world: FakeWorld) -> None:
    await speak(world)
    mp3 = await speak(world, audio_format="mp3")
    bob = await speak(world, voice="bob")
    assert not mp3.cached and not bob.cached
    assert len(world.synthesizer.spoken) == 3


async def test_use_cache_false_bypasses_the_cache(world: FakeWorld) -> None:
    await speak(world)
    again = await speak(world, use_cache=False)
    assert again.cached is False
    assert "CacheLookedUp" not in (await world.recorded_types())[len(MISS) :]


@pytest.mark.parametrize(
    ("part", "step"),
    [("synthesizer", "synthesis"), ("processor", "processing"), ("codec", "encoding")],
)
async def test_failure_in_a_step_is_recorded_and_reported(
    world: FakeWorld, part: str, step: str
) -> None:
    if part == "codec":
        world.codec.fail_encode = True
    else:
        getattr(world, part).fail = True
    with pytest.raises(StepFailed) as raised:
        await speak(world)
    assert raised.value.code == f"{step}_failed"
    failed = (await world.recorded())[-1]
    assert isinstance(failed, RequestFailed)
    assert (failed.step, failed.code, failed.pipeline) == (step, f"{step}_failed", "tts")


async def test_cache_failure_degrades_but_serves() -> None:
    world = build_world(cache=FailingCache())
    result = await speak(world)
    assert result.cached is False
    types = await world.recorded_types()
    assert types[-1] == "RequestCompleted"
    degraded = [e for e in await world.recorded() if isinstance(e, StepDegraded)]
    assert [(e.step, e.code) for e in degraded] == [("cache", "cache_unavailable")] * 2


class AwayCache:
    """A cache known to be away (as RedisLink says while Redis is down: ConnectionError)."""

    async def get(self, key: str) -> bytes | None:
        raise ConnectionError("redis unreachable")

    async def put(self, key: str, value: bytes) -> None:
        raise ConnectionError("redis unreachable")


async def test_a_cache_known_away_is_not_a_warning_per_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """During an outage every request bypasses the cache: the link says so once, not each."""
    for cache, warnings in ((AwayCache(), 0), (FailingCache(), 2)):
        caplog.clear()
        world = build_world(cache=cache)
        assert (await speak(world)).cached is False
        assert sum(r.levelname == "WARNING" for r in caplog.records) == warnings
        degraded = [e for e in await world.recorded() if isinstance(e, StepDegraded)]
        assert len(degraded) == 2  # still recorded, each time


async def test_sentiment_failure_degrades_but_serves(world: FakeWorld) -> None:
    world.sentiment.fail = True
    result = await speak(world)
    assert result.audio.sentiment is None
    types = await world.recorded_types()
    assert "SentimentAnalysed" not in types
    assert types[-2:] == ["StepDegraded", "RequestCompleted"]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"text": "   "}, EmptyText),
        ({"text": "x" * 101}, TextTooLong),
        ({"audio_format": "aiff"}, UnsupportedFormat),
        ({"voice": "nobody"}, UnknownVoice),
    ],
)
async def test_invalid_requests_are_refused_and_recorded(
    world: FakeWorld, fields: dict[str, Any], error: type[Exception]
) -> None:
    command = {"text": "hello", **fields}
    with pytest.raises(error):
        await speak(world, **command)
    events = await world.recorded()
    assert [type(e).__name__ for e in events] == ["RequestReceived", "RequestFailed"]
    assert events[-1].step == "validation"  # type: ignore[union-attr]
    assert world.synthesizer.spoken == []


async def test_refresh_cache_regenerates_and_overwrites(world: FakeWorld) -> None:
    await speak(world)
    refreshed = await speak(world, refresh_cache=True)
    assert refreshed.cached is False
    assert len(world.synthesizer.spoken) == 2
    assert "CacheLookedUp" not in (await world.recorded_types())[len(MISS) :]
    again = await speak(world)
    assert again.cached is True and again.audio == refreshed.audio
