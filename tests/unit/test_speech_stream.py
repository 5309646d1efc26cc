"""StreamSpeech: text in (whole or in deltas), audio chunks out; cancel, cache, limits."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest

from application.stream_speech import (
    SpeechStream,
    StreamChunk,
    StreamFinished,
    StreamItem,
    StreamStarted,
)
from application.synthesize_speech import SpeakCommand
from domain.errors import InvalidRequest, ProviderError, TextTooLong
from domain.events import AudioStreamed
from domain.speech import AudioClip, SpokenAudio
from entrypoints.settings import Settings
from tests.unit.conftest import FakeWorld, build_world
from tests.unit.fakes import FakeSynthesizer

RATE = 16_000
PIECE = b"\x01\x00" * 1600  # what FakeSynthesizer says for any text: 100 ms
PAUSE = b"\x00\x00" * (RATE // 4)  # 250 ms between pieces
TEXT = "Hello there. How are you today?"


class Cloud(FakeSynthesizer):
    """A cloud provider with audio of its own; `down` after it has spoken `speaks` pieces."""

    PCM = b"\x02\x00" * 1600

    def __init__(self, speaks: int | None = None) -> None:
        super().__init__(provider="cloud", voices=("rachel",))
        self.speaks = speaks

    async def synthesize(self, text: str, voice: str, speed: float = 1.0) -> AudioClip:
        if self.speaks is not None and len(self.spoken) >= self.speaks:
            raise ProviderError("provider_error", "cloud answered 500", transient=True)
        self.spoken.append((text, voice))
        return AudioClip(pcm=self.PCM, sample_rate=RATE)


class DictCache:
    """An audio cache that keeps every entry where a test can read it."""

    def __init__(self) -> None:
        self.entries: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes | None:
        return self.entries.get(key)

    async def put(self, key: str, value: bytes) -> None:
        self.entries[key] = value


async def open_stream(world: FakeWorld, **fields: Any) -> SpeechStream:
    return await world.container.stream_speech.open(pipeline_id="p1", transport="test", **fields)


async def collect(world: FakeWorld, stream: SpeechStream) -> list[StreamItem]:
    items = [item async for item in stream.items()]
    await world.container.stream_speech.close(stream)
    return items


async def speak_whole(world: FakeWorld, text: str, **fields: Any) -> list[StreamItem]:
    return await collect(world, await open_stream(world, text=text, **fields))


def started(items: list[StreamItem]) -> StreamStarted:
    assert isinstance(items[0], StreamStarted)
    return items[0]


def finished(items: list[StreamItem]) -> StreamFinished:
    assert isinstance(items[-1], StreamFinished)
    return items[-1]


def audio(items: list[StreamItem]) -> bytes:
    return b"".join(item.pcm for item in items if isinstance(item, StreamChunk))


async def test_a_whole_text_gives_start_chunks_and_a_finish_with_totals() -> None:
    world = build_world()
    items = await speak_whole(world, TEXT)
    assert items[0] == StreamStarted(RATE, "fake", "alice", cached=False, fallback=False)
    assert items[1:3] == [
        StreamChunk(0, PIECE, "Hello there."),
        StreamChunk(1, PAUSE + PIECE, "How are you today?"),
    ]
    done = finished(items)
    assert (done.duration, done.chunks, done.cached, done.cancelled) == (0.45, 2, False, False)
    assert done.text == TEXT
    assert done.sentiment is not None and done.sentiment.label == "neutral"
    assert world.synthesizer.spoken == [("Hello there.", "alice"), ("How are you today?", "alice")]
    types = await world.recorded_types()
    assert {"RequestReceived", "AudioStreamed", "RequestCompleted"} <= set(types)


async def test_text_in_deltas_speaks_each_sentence_once_it_is_complete() -> None:
    world = build_world()
    stream = await open_stream(world)
    stream.add_text("Hello the")
    stream.add_text("re. How are")
    items = stream.items()
    assert await anext(items) == StreamStarted(RATE, "fake", "alice", False, False)
    assert await anext(items) == StreamChunk(0, PIECE, "Hello there.")
    assert world.synthesizer.spoken == [("Hello there.", "alice")]
    stream.add_text(" you? Fine")
    assert await anext(items) == StreamChunk(1, PAUSE + PIECE, "How are you?")
    assert [text for text, _ in world.synthesizer.spoken] == ["Hello there.", "How are you?"]
    stream.finish()  # the unfinished rest is spoken too
    assert await anext(items) == StreamChunk(2, PAUSE + PIECE, "Fine")
    done = await anext(items)
    assert isinstance(done, StreamFinished)
    assert (done.text, done.chunks, done.duration) == ("Hello there. How are you? Fine", 3, 0.8)
    assert [text for text, _ in world.synthesizer.spoken][-1] == "Fine"


async def test_cancel_stops_after_the_piece_in_flight_and_caches_nothing() -> None:
    world = build_world()
    stream = await open_stream(world, text="One. Two. Three.")
    items = stream.items()
    assert isinstance(await anext(items), StreamStarted)  # the first piece is spoken
    stream.cancel()
    rest = [item async for item in items]
    assert rest[0] == StreamChunk(0, PIECE, "One.")  # the piece in flight is still sent
    done = rest[-1]
    assert len(rest) == 2 and isinstance(done, StreamFinished)
    assert (done.cancelled, done.chunks, done.text) == (True, 1, "One.")
    assert world.synthesizer.spoken == [("One.", "alice")]
    await world.container.stream_speech.close(stream)
    streamed = [e for e in await world.recorded() if isinstance(e, AudioStreamed)]
    assert [(e.cancelled, e.chunks) for e in streamed] == [(True, 1)]
    again = await speak_whole(world, "One. Two. Three.")
    assert started(again).cached is False
    assert finished(again).chunks == 3


async def test_a_whole_text_streamed_twice_is_replayed_from_the_cache() -> None:
    world = build_world()
    first = await speak_whole(world, TEXT)
    second = await speak_whole(world, TEXT)
    assert started(second) == StreamStarted(RATE, "fake", "alice", cached=True, fallback=False)
    assert audio(second) == audio(first)
    assert len(world.synthesizer.spoken) == 2  # only the first stream was synthesized
    done = finished(second)
    assert (done.cached, done.duration, done.text) == (True, 0.45, TEXT)
    assert done.sentiment == finished(first).sentiment
    assert "CacheLookedUp" in await world.recorded_types()


async def test_a_sentence_ending_in_a_quote_streamed_twice_is_replayed_from_the_cache() -> None:
    """The text spoken is the text given: a closing quote or bracket after a sentence's end
    is part of it, and the entry is stored under the key it is looked up by."""
    world = build_world()
    text = 'She said "yes." Then she left.'
    first = await speak_whole(world, text)
    second = await speak_whole(world, text)
    assert (finished(first).text, started(second).cached) == (text, True)


async def test_a_streamed_entry_is_never_a_one_shot_pcm_entry() -> None:
    world = build_world()
    await speak_whole(world, TEXT)
    command = SpeakCommand(text=TEXT, audio_format="pcm")
    one_shot = await world.container.synthesize.execute(command, pipeline_id="o1", transport="t")
    assert one_shot.cached is False
    again = await world.container.synthesize.execute(command, pipeline_id="o2", transport="t")
    assert again.cached is True and again.audio.data == one_shot.audio.data
    streamed = await speak_whole(world, TEXT)
    assert started(streamed).cached is True
    assert audio(streamed) == PIECE + PAUSE + PIECE  # its own entry, not the one-shot's


async def test_a_one_shot_pcm_entry_is_never_streamed() -> None:
    world = build_world()
    command = SpeakCommand(text=TEXT, audio_format="pcm")
    await world.container.synthesize.execute(command, pipeline_id="o1", transport="t")
    streamed = await speak_whole(world, TEXT)
    assert started(streamed).cached is False
    assert audio(streamed) == PIECE + PAUSE + PIECE


async def test_a_stream_spoken_by_a_fallback_is_stored_under_its_voice() -> None:
    cloud = Cloud(speaks=0)  # down
    world = build_world(synthesizers=[cloud])
    first = await speak_whole(world, TEXT)
    assert started(first) == StreamStarted(RATE, "fake", "alice", cached=False, fallback=True)
    assert "ProviderFellBack" in await world.recorded_types()
    second = await speak_whole(world, TEXT)
    assert started(second) == StreamStarted(RATE, "fake", "alice", cached=True, fallback=True)
    assert audio(second) == audio(first)
    assert len(world.synthesizer.spoken) == 2  # the replay spoke nothing


async def test_audio_announced_as_one_voice_is_never_another_voice_from_the_cache() -> None:
    """The cloud speaks the first piece, then fails: the fallback speaks the second. That
    stream has no single voice, so no later stream may replay it as the cloud's."""
    cloud = Cloud(speaks=1)
    world = build_world(synthesizers=[cloud])
    mixed = await speak_whole(world, TEXT)
    assert started(mixed).voice == "rachel"
    assert audio(mixed) == Cloud.PCM + PAUSE + PIECE  # two voices in one stream
    cloud.speaks = None  # the cloud is back
    again = await speak_whole(world, TEXT)
    assert started(again).voice == "rachel"
    replayed_fallback = PIECE in audio(again)
    assert not replayed_fallback, "the fallback's voice was replayed as rachel's"


async def test_the_cached_duration_is_the_length_of_the_audio() -> None:
    cache = DictCache()
    world = build_world(cache=cache)
    items = await speak_whole(world, TEXT)
    (entry,) = [msgspec.msgpack.decode(v, type=SpokenAudio) for v in cache.entries.values()]
    assert entry.data == audio(items)
    assert entry.sample_rate == RATE
    assert entry.duration_ms == 1000 * len(entry.data) / 2 / RATE == 450.0
    assert entry.duration_ms == 1000 * finished(items).duration


async def test_deltas_past_max_text_chars_in_total_are_refused_and_not_queued() -> None:
    world = build_world()  # max_text_chars=100
    stream = await open_stream(world)
    first = "a" * 60 + ". "
    stream.add_text(first)  # 62
    with pytest.raises(TextTooLong, match="102 characters"):
        stream.add_text("b" * 39 + ".")
    with pytest.raises(TextTooLong):
        stream.check_text("c" * 39)
    stream.add_text("c" * 37 + ".")  # 100: exactly the limit
    stream.finish()
    items = await collect(world, stream)
    assert [text for text, _ in world.synthesizer.spoken] == ["a" * 60 + ".", "c" * 37 + "."]
    assert finished(items).chunks == 2


async def test_the_delta_limit_scales_with_a_slow_speed() -> None:
    world = build_world()
    stream = await open_stream(world, speed=0.5)  # half speed: half the text
    stream.add_text("a" * 50)
    with pytest.raises(TextTooLong):
        stream.add_text("a")


async def test_deltas_are_bounded_like_a_whole_text_at_the_same_speed() -> None:
    """At speed 0.29, 100 * 0.29 is 28.999…: a whole text may have 29 characters."""
    world = build_world()
    await open_stream(world, text="a" * 29, speed=0.29)  # accepted whole
    stream = await open_stream(world, speed=0.29)
    stream.add_text("a" * 29)  # so accepted in deltas too


async def test_unspeakable_characters_in_deltas_are_dropped_not_spoken() -> None:
    world = build_world()
    stream = await open_stream(world)
    stream.add_text("Hel\x00lo\u200b there. ")
    stream.add_text("\x07\x1b\x00")  # nothing left to say
    stream.finish()
    items = await collect(world, stream)
    assert world.synthesizer.spoken == [("Hello there.", "alice")]
    assert (finished(items).text, finished(items).chunks) == ("Hello there.", 1)


@pytest.mark.parametrize("speed", [0.2, 4.5, math.nan])
async def test_a_speed_out_of_range_is_refused_at_open(speed: float) -> None:
    world = build_world()
    with pytest.raises(InvalidRequest, match="speed"):
        await open_stream(world, speed=speed)
    with pytest.raises(InvalidRequest, match="speed"):
        await open_stream(world, speed=speed, text="Hello.")


async def test_text_too_long_for_its_speed_is_refused_at_open() -> None:
    world = build_world()
    with pytest.raises(TextTooLong, match=r"at speed 0\.5 the limit is 50"):
        await open_stream(world, text="a" * 51, speed=0.5)
    items = await speak_whole(world, "a" * 50, speed=0.5)
    assert finished(items).text == "a" * 50
    assert world.synthesizer.spoken == [("a" * 50, "alice")]


async def test_no_pause_between_the_pieces_of_one_sentence() -> None:
    world = build_world(Settings(max_text_chars=1000))
    opening = "The package was left at the front door near the station this morning."
    items = await speak_whole(world, f"{opening} Thanks.")
    chunks = [item for item in items if isinstance(item, StreamChunk)]
    assert [c.text for c in chunks] == [
        "The package was left at the front door near the station",
        "this morning.",
        "Thanks.",
    ]
    assert [c.pcm for c in chunks] == [PIECE, PIECE, PAUSE + PIECE]  # a pause between sentences
