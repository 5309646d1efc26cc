"""Eager ends of turn through an UtteranceStream: told once the turn model and the early
final agree, before the Final that confirms them; taken back only if they were told."""

from __future__ import annotations

import msgspec

from application.stream_events import (
    EagerEndOfTurn,
    Final,
    Partial,
    SpeechStarted,
    SpeechStopped,
    StreamEvent,
    TurnResumed,
)
from application.transcribe_stream import UtteranceStream
from tests.unit.conftest import FakeWorld, build_world
from tests.unit.fakes import FakeTranscriber, FakeVadSession
from tests.unit.stream_fakes import SEMANTIC, ClipLengths, FakeTurns, feed, silence, speech

EAGER = msgspec.structs.replace(SEMANTIC, complete_threshold=0.7, eager_threshold=0.4)


def stream_of(
    world: FakeWorld, turns: FakeTurns, transcriber: FakeTranscriber | None = None
) -> tuple[UtteranceStream, list[StreamEvent]]:
    told: list[StreamEvent] = []

    async def emit(event: StreamEvent) -> None:
        if not isinstance(event, Partial):
            told.append(event)

    stream = UtteranceStream(
        transcriber=transcriber or world.transcriber,
        transcribe=world.container.transcribe,
        vad=FakeVadSession(),
        emit=emit,
        stream_id="s1",
        language=None,
        policy=EAGER,
        clock=world.clock,
        turns=turns,
    )
    return stream, told


def kinds(told: list[StreamEvent]) -> list[type]:
    return [type(event) for event in told]


async def test_a_likely_end_is_told_with_the_early_transcript_then_confirmed() -> None:
    stream, told = stream_of(build_world(), FakeTurns(0.5))  # likely, not sure
    await feed(stream, silence(640) + speech(320) + silence(320), frame=1024)
    assert kinds(told) == [SpeechStarted, EagerEndOfTurn]  # long before the 1 s wait
    eager = told[1]
    assert isinstance(eager, EagerEndOfTurn)
    assert (eager.start, eager.end, eager.probability) == (0.32, 1.152, 0.5)
    assert eager.transcript.text == "hello world"
    await feed(stream, silence(800), frame=1024)
    assert kinds(told) == [SpeechStarted, EagerEndOfTurn, SpeechStopped, Final]
    final = told[-1]
    assert isinstance(final, Final) and final.confidence == 0.5 and final.reason == "silence"
    await stream.close(finish=True)


async def test_a_sure_end_is_told_eagerly_just_before_its_final() -> None:
    stream, told = stream_of(build_world(), FakeTurns(0.9))
    await feed(stream, silence(640) + speech(320) + silence(320), frame=1024)
    await stream.close(finish=True)
    assert kinds(told) == [SpeechStarted, SpeechStopped, EagerEndOfTurn, Final]
    eager, final = told[2], told[3]
    assert isinstance(eager, EagerEndOfTurn) and isinstance(final, Final)
    assert eager.transcript.text == final.result.transcript.text and final.reason == "turn"


async def test_speech_after_a_told_eager_end_resumes_the_turn() -> None:
    turns = FakeTurns(0.5)
    stream, told = stream_of(build_world(), turns)
    await feed(stream, silence(640) + speech(320) + silence(320), frame=1024)
    await feed(stream, speech(320) + silence(64), frame=1024)
    assert kinds(told) == [SpeechStarted, EagerEndOfTurn, TurnResumed]
    assert told[-1] == TurnResumed(0)
    turns.probability = 0.9
    await feed(stream, silence(320), frame=1024)
    await stream.close(finish=True)
    assert kinds(told)[3:] == [SpeechStopped, EagerEndOfTurn, Final]


async def test_an_eager_end_not_yet_told_is_dropped_silently_when_speech_goes_on() -> None:
    slow = ClipLengths(hold=True)  # the early final waits: the eager end cannot be told
    stream, told = stream_of(build_world(), FakeTurns(0.5), slow)
    await feed(stream, silence(640) + speech(320) + silence(320), frame=1024)
    await feed(stream, speech(320) + silence(64), frame=1024)
    assert kinds(told) == [SpeechStarted]  # no eager end, so no resumption either
    slow.release.set()
    await stream.close(finish=True)
    assert kinds(told) == [SpeechStarted, SpeechStopped, Final]
