"""Speaking: streamed synthesis for a key; what is charged, when, and what a refusal leaves."""

from __future__ import annotations

from typing import Any

import pytest

from application.access import Principal, RateLimited
from application.speaking import SpeakingSession
from application.stream_speech import StreamFinished, StreamItem
from domain.errors import InvalidRequest, TextTooLong, UnknownVoice
from domain.events import RequestFailed
from entrypoints.settings import Settings
from tests.unit.conftest import FakeWorld, build_world


def keyed_world(tts_chars_per_day: int = 50) -> FakeWorld:
    settings = Settings(
        api_keys=("alice:alice-secret",),
        tts_chars_per_day=tts_chars_per_day,
        max_text_chars=100,
    )
    return build_world(settings)


def alice(world: FakeWorld) -> Principal:
    return world.container.access.authenticate("alice-secret")


async def charged(world: FakeWorld) -> float:
    bucket = f"{alice(world).key_id}:tts_chars"
    return await world.container.access.store.add(bucket, 0, 86_400, world.clock.now())


async def open_session(world: FakeWorld, pipeline_id: str = "p1", **fields: Any) -> SpeakingSession:
    return await world.container.speaking.open(
        alice(world), pipeline_id=pipeline_id, transport="test", **fields
    )


async def drain(session: SpeakingSession) -> list[StreamItem]:
    items = [item async for item in session.items()]
    await session.close()
    return items


async def events_of(world: FakeWorld, pipeline_id: str) -> list[Any]:
    return [e for e in await world.recorded() if e.pipeline_id == pipeline_id]


async def test_a_delta_over_the_stream_limit_is_not_charged() -> None:
    world = keyed_world(tts_chars_per_day=1_000)
    session = await open_session(world)
    assert await charged(world) == 0  # opening for deltas costs nothing
    await session.add_text("a" * 60 + ". ")
    assert await charged(world) == 62
    with pytest.raises(TextTooLong):
        await session.add_text("b" * 50)  # 112 > max_text_chars
    assert await charged(world) == 62
    session.finish()
    items = await drain(session)
    assert [text for text, _ in world.synthesizer.spoken] == ["a" * 60 + "."]
    assert isinstance(items[-1], StreamFinished) and items[-1].text == "a" * 60 + "."


async def test_a_delta_over_the_daily_quota_is_refused_and_not_spoken() -> None:
    world = keyed_world(tts_chars_per_day=50)
    session = await open_session(world)
    await session.add_text("Hello there. ")  # 13
    with pytest.raises(RateLimited, match="TTS characters a day"):
        await session.add_text("b" * 38 + ". ")  # 13 + 40 > 50
    assert await charged(world) == 13
    session.finish()
    await drain(session)
    assert [text for text, _ in world.synthesizer.spoken] == ["Hello there."]


async def test_a_whole_text_is_charged_on_open() -> None:
    world = keyed_world()
    text = "Hello there. How are you today?"
    session = await open_session(world, text=text)
    assert await charged(world) == len(text)  # before any audio
    items = await drain(session)
    assert isinstance(items[-1], StreamFinished) and items[-1].chunks == 2
    assert await charged(world) == len(text)  # once


async def test_a_quota_exceeded_on_open_closes_the_streams_run() -> None:
    world = keyed_world(tts_chars_per_day=50)
    await drain(await open_session(world, pipeline_id="first", text="a" * 40 + "."))
    with pytest.raises(RateLimited):
        await open_session(world, pipeline_id="second", text="b" * 20 + ".")
    assert await charged(world) == 41
    assert len(world.synthesizer.spoken) == 1  # only the first stream was spoken
    events = await events_of(world, "second")
    assert [type(e).__name__ for e in events] == ["RequestReceived", "RequestFailed"]
    assert (events[1].step, events[1].code) == ("validation", "rate_limited")
    assert "RequestFailed" in await world.recorded_types()


async def test_a_text_over_the_daily_quota_alone_is_refused_on_open() -> None:
    world = keyed_world(tts_chars_per_day=50)
    with pytest.raises(RateLimited, match="alone"):
        await open_session(world, text="a" * 60 + ".")
    assert await charged(world) == 0
    assert [type(e).__name__ for e in await events_of(world, "p1")][-1] == "RequestFailed"


async def test_a_refused_open_records_its_failure() -> None:
    """A bad speed is refused before anything is charged, and recorded like any refusal."""
    world = keyed_world()
    with pytest.raises(InvalidRequest, match="speed"):
        await open_session(world, pipeline_id="slow", speed=5.0, text="Hello.")
    assert await charged(world) == 0
    failed = [e for e in await events_of(world, "slow") if isinstance(e, RequestFailed)]
    assert [(e.step, e.code) for e in failed] == [("validation", "invalid_request")]


async def test_text_a_delta_was_charged_for_is_spoken() -> None:
    """NFC makes two characters of each U+0958: 60 sent are 120 once normalized."""
    world = keyed_world(tts_chars_per_day=1_000)
    session = await open_session(world)
    try:
        await session.add_text("\u0958" * 60)
    except TextTooLong:
        assert await charged(world) == 0  # refused before it was charged: fine too
        return
    session.finish()  # accepted and paid for: never refused later
    items = await drain(session)
    assert isinstance(items[-1], StreamFinished) and items[-1].chunks >= 1


async def test_an_unknown_voice_is_refused_before_it_is_charged() -> None:
    world = keyed_world()
    with pytest.raises(UnknownVoice):
        await world.container.speaking.speak(
            alice(world),
            "hello there",
            voice="../../etc/passwd",
            pipeline_id="v1",
            transport="test",
        )
    assert await charged(world) == 0


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"text": "x" * 60, "speed": 0.25}, "text_too_long"),  # 60 > 100 * 0.25
        ({"text": "hello", "audio_format": "wma"}, "unsupported_format"),
        ({"text": " \u200b "}, "empty_text"),
        ({"text": "hello", "speed": 9.0}, "invalid_request"),
        ({"text": "hello", "voice": "nobody"}, "unknown_voice"),
    ],
)
async def test_a_refused_request_is_not_charged(fields: dict[str, Any], code: str) -> None:
    world = keyed_world()
    text = fields.pop("text")
    with pytest.raises(Exception) as refused:
        await world.container.speaking.speak(
            alice(world), text, pipeline_id="r1", transport="test", **fields
        )
    assert getattr(refused.value, "code", None) == code
    assert await charged(world) == 0


async def test_the_normalized_text_is_what_is_charged() -> None:
    world = keyed_world()
    await world.container.speaking.speak(
        alice(world), "  hello\u200b   there  ", pipeline_id="n1", transport="test"
    )
    assert await charged(world) == len("hello there")


async def test_a_cancelled_stream_gives_back_what_it_never_said() -> None:
    world = keyed_world(tts_chars_per_day=1_000)
    session = await open_session(world)
    await session.add_text("One sentence here. Another sentence there. ")
    await session.add_text("And a third one. ")
    assert await charged(world) == 60
    items = session.items()
    async for item in items:
        if not isinstance(item, StreamFinished):
            session.cancel()  # after the first piece: the rest is never synthesized
    await session.close()
    assert [text for text, _ in world.synthesizer.spoken] == ["One sentence here."]
    assert await charged(world) == len("One sentence here. ")  # with its space


async def test_a_whole_text_cancelled_before_it_is_spoken_costs_nothing() -> None:
    world = keyed_world(tts_chars_per_day=1_000)
    session = await open_session(world, text="Never said at all. Not one word.", use_cache=False)
    assert await charged(world) == len("Never said at all. Not one word.")
    session.cancel()
    await drain(session)
    assert await charged(world) == 0
