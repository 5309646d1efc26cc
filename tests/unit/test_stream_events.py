"""The session events every protocol reads alike: spans in stream time, and why each
utterance ended (silence, turn, client, length, stream_end), down to its Final or Failed."""

from __future__ import annotations

from application.stream_events import Failed, Final, SpeechStarted, SpeechStopped
from domain.utterances import Endpointing
from tests.unit.conftest import build_world
from tests.unit.fakes import StillClock
from tests.unit.stream_fakes import (
    SEMANTIC,
    WINDOW,
    ClipLengths,
    FailingFinals,
    FakeTurns,
    Heard,
    feed,
    finals,
    open_stream,
    partials,
    settle,
    silence,
    speech,
)


def reasons(heard: Heard) -> list[tuple[int, str]]:
    return [(item.utterance, item.reason) for item in heard if isinstance(item, Final | Failed)]


async def test_each_final_says_why_its_utterance_ended() -> None:
    world = build_world()
    notices: list[SpeechStarted | SpeechStopped] = []
    stream, heard = open_stream(world, policy=Endpointing(max_utterance_ms=1500), notices=notices)
    await feed(stream, silence(640) + speech(320) + silence(640), frame=WINDOW)  # 0: silence
    await feed(stream, speech(320))
    await stream.end_utterance()  # 1: client
    await feed(stream, speech(1920), frame=WINDOW)  # 2: length, at 1.5 s
    await stream.close(finish=True)  # 3: the rest, stream_end
    expected = [(0, "silence"), (1, "client"), (2, "length"), (3, "stream_end")]
    assert reasons(heard) == expected
    stopped = [n for n in notices if isinstance(n, SpeechStopped)]
    assert [(n.utterance, n.reason) for n in stopped] == expected
    starts = [n.audio_ms for n in notices if isinstance(n, SpeechStarted)]
    assert [n.start_ms for n in stopped] == starts  # the span starts where speech did
    assert all(n.start_ms < n.end_ms for n in stopped)
    assert (finals(heard)[0].start, finals(heard)[0].end) == (stopped[0].start_ms / 1000, 1.088)


async def test_a_final_the_turn_model_ended_says_turn() -> None:
    world = build_world()
    stream, heard = open_stream(world, policy=SEMANTIC, turns=FakeTurns(0.9))
    await feed(stream, silence(640) + speech(320) + silence(288), frame=WINDOW)
    assert reasons(heard) == [(0, "turn")]
    await stream.close(finish=True)


async def test_a_failed_final_says_why_too() -> None:
    world = build_world()
    transcriber = FailingFinals()
    transcriber.error = RuntimeError("model down")
    stream, heard = open_stream(world, transcriber=transcriber)
    await feed(stream, silence(640) + speech(320))
    await stream.end_utterance()
    await settle()
    assert [(f.code, f.reason) for f in heard if isinstance(f, Failed)] == [
        ("transcription_failed", "client")
    ]
    await stream.close(finish=True)


async def test_partials_say_where_their_utterance_starts() -> None:
    world = build_world()
    clock = StillClock()
    stream, heard = open_stream(world, partial_ms=100, clock=clock)
    await feed(stream, silence(640) + speech(640), frame=WINDOW, clock=clock)
    assert partials(heard) and {p.start_ms for p in partials(heard)} == {320}
    await stream.close(finish=True)


async def test_finalize_ends_the_utterance_in_progress() -> None:
    world = build_world()
    stream, heard = open_stream(world)
    await feed(stream, silence(640) + speech(320))
    assert await stream.finalize()
    await settle()
    assert reasons(heard) == [(0, "client")]
    assert not await stream.finalize()  # neither an utterance nor a final to come
    await stream.close(finish=True)
    assert reasons(heard) == [(0, "client")]


async def test_finalize_with_a_final_still_to_come_gives_it_to_the_client() -> None:
    world = build_world()
    transcriber = ClipLengths(hold=True)  # the final waits for the model
    stream, heard = open_stream(world, transcriber=transcriber)
    await feed(stream, silence(640) + speech(320) + silence(640), frame=WINDOW)
    assert finals(heard) == []
    assert await stream.finalize()  # ended by silence, but its final is still to come
    transcriber.release.set()
    await settle()
    assert reasons(heard) == [(0, "client")]
    assert not await stream.finalize()  # out: nothing left to finalize
    await stream.close(finish=True)
