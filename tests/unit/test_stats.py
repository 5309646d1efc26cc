"""The stats projection is a pure fold: replaying recorded events gives the same stats."""

from __future__ import annotations

import contextlib

from adapters.memory_event_log import InMemoryEventLog
from application.stats import Stats, StatsProjector, percentile, replay
from application.synthesize_speech import SpeakCommand
from domain.errors import VoicePipeError
from domain.events import decode_event, encode_event
from tests.unit.conftest import FakeWorld


async def run_traffic(world: FakeWorld) -> None:
    speak = world.container.synthesize.execute
    for i, text in enumerate(["good one", "good one", "two", "", "x" * 500]):
        with contextlib.suppress(VoicePipeError):
            await speak(SpeakCommand(text=text), pipeline_id=f"t{i}", transport="test")
    for i, audio in enumerate([b"AUDIO\x00\x00", b"junk"]):
        with contextlib.suppress(VoicePipeError):
            await world.container.transcribe.execute(
                audio, None, pipeline_id=f"s{i}", transport="test"
            )


async def test_replay_gives_the_same_stats(world: FakeWorld) -> None:
    await run_traffic(world)
    live = (await world.container.projector.catch_up()).snapshot()
    events = await world.recorded()
    assert replay(events).snapshot() == live
    # Through the wire format too, as a restarted instance would read them.
    assert replay([decode_event(encode_event(e)) for e in events]).snapshot() == live


async def test_stats_count_what_happened(world: FakeWorld) -> None:
    await run_traffic(world)
    snap = (await world.container.projector.catch_up()).snapshot()
    assert snap["requests"]["tts"] == {"received": 5, "completed": 3, "failed": 2}
    assert snap["requests"]["stt"] == {"received": 2, "completed": 1, "failed": 1}
    assert snap["cache"]["hits"] == 1 and snap["cache"]["misses"] == 2
    assert snap["cache"]["hit_rate"] == 0.3333
    assert snap["errors"] == {"empty_text": 1, "invalid_audio": 1, "text_too_long": 1}
    assert snap["providers"]["fake"]["voices"] == {"alice": 2}
    assert snap["latency_ms"]["pipelines"]["tts"]["count"] == 3
    assert set(snap["latency_ms"]["steps"]) == {
        "cache",
        "synthesis",
        "processing",
        "encoding",
        "sentiment",
        "decoding",
        "transcription",
    }


async def test_projector_reads_only_new_events() -> None:
    log = InMemoryEventLog()
    projector = StatsProjector(log, batch=2)
    assert (await projector.catch_up()).events == 0
    world_events = []
    from domain.events import RequestReceived

    for i in range(5):
        world_events.append(
            RequestReceived(
                pipeline_id=str(i),
                occurred_at=float(i),
                pipeline="tts",
                transport="t",
                input_size=1,
            )
        )
    await log.append(world_events)
    assert (await projector.catch_up()).received["tts"] == 5
    await log.append(world_events[:1])
    assert (await projector.catch_up()).received["tts"] == 6


def test_percentile_nearest_rank() -> None:
    values = sorted(float(v) for v in range(1, 101))
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([], 50) == 0.0
    assert Stats().snapshot()["cache"]["hit_rate"] == 0.0
