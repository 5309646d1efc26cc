"""UtteranceStream: partials while speaking, finals in order and in stream time, failures.

Helpers in stream_fakes: `speech(ms)` and `silence(ms)` in multiples of 32 ms line up with the
fake VAD's windows.
"""

from __future__ import annotations

import itertools

import pytest

from application.transcribe_stream import Failed, SpeechStarted, SpeechStopped
from domain.errors import Busy
from domain.events import SpeechTranscribed
from domain.utterances import Endpointing
from tests.unit.conftest import build_world
from tests.unit.fakes import Broken, StillClock
from tests.unit.stream_fakes import (
    BYTES_PER_MS,
    PREROLL_BYTES,
    SEMANTIC,
    WINDOW,
    ClipLengths,
    FailingFinals,
    FakeTurns,
    HeldDrafts,
    faint,
    feed,
    finals,
    open_stream,
    partials,
    settle,
    silence,
    speech,
)


async def test_partials_come_while_speech_goes_on_not_in_the_pause() -> None:
    world = build_world()
    clock = StillClock()
    stream, heard = open_stream(world, partial_ms=100, clock=clock)
    await feed(stream, silence(320) + speech(640), frame=WINDOW, clock=clock)
    during_speech = partials(heard)
    assert len(during_speech) >= 3
    assert {p.utterance for p in during_speech} == {0}
    assert all(p.text == "hello world" for p in during_speech)
    lengths = [p.audio_ms for p in during_speech]
    assert lengths == sorted(lengths) and len(set(lengths)) == len(lengths)
    await feed(stream, silence(480), frame=WINDOW, clock=clock)  # a pause, short of the endpoint
    assert partials(heard) == during_speech
    assert finals(heard) == []
    await feed(stream, speech(320), frame=WINDOW, clock=clock)  # speech resumes: drafts again
    assert len(partials(heard)) > len(during_speech)
    assert {p.utterance for p in partials(heard)} == {0}
    await stream.close(finish=True)
    assert [f.utterance for f in finals(heard)] == [0]


async def test_finals_come_in_utterance_order_timed_from_the_stream_start() -> None:
    world = build_world()
    transcriber = ClipLengths(hold=True)  # the first utterance's model is the slow one
    stream, heard = open_stream(world, transcriber=transcriber)
    await feed(stream, silence(640) + speech(320) + silence(640) + speech(640) + silence(640))
    assert finals(heard) == []  # the second is ready, but waits for the first
    transcriber.release.set()
    await settle()
    first, second = finals(heard)
    assert (first.utterance, first.start, first.end) == (0, 0.32, 1.152)  # 320 ms preroll,
    assert (second.utterance, second.start, second.end) == (1, 1.28, 2.432)  # 192 ms after
    assert first.result.transcript.text == "832 ms"  # each final has its own audio
    assert second.result.transcript.text == "1152 ms"
    segments = [(s.start, s.end) for f in (first, second) for s in f.result.transcript.segments]
    assert segments == [(0.32, 1.32), (1.28, 2.28)]  # the model's (0, 1) moved to stream time
    await stream.close(finish=True)
    assert len(finals(heard)) == 2
    recorded = await world.recorded()
    transcribed = [e.pipeline_id for e in recorded if isinstance(e, SpeechTranscribed)]
    assert transcribed == ["s1-0", "s1-1"]


@pytest.mark.parametrize(
    ("error", "code"),
    [(Broken("model down"), "transcription_failed"), (Busy("queue full"), "busy")],
)
async def test_a_failed_final_is_reported_and_the_stream_goes_on(
    error: Exception, code: str
) -> None:
    world = build_world()
    transcriber = FailingFinals()
    stream, heard = open_stream(world, transcriber=transcriber)
    transcriber.error = error
    await feed(stream, silence(640) + speech(160) + silence(640))
    assert len(heard) == 1 and isinstance(heard[0], Failed)
    assert (heard[0].utterance, heard[0].code) == (0, code)
    transcriber.error = None
    await feed(stream, speech(160) + silence(640))
    await stream.close(finish=True)
    assert [type(item).__name__ for item in heard] == ["Failed", "Final"]
    assert finals(heard)[0].utterance == 1


async def test_close_without_finishing_emits_nothing_more() -> None:
    world = build_world()
    ended, heard = open_stream(world)
    await ended.feed(silence(640) + speech(320) + silence(640))  # its final is queued
    await ended.close(finish=False)
    speaking, heard_speaking = open_stream(world, partial_ms=100)
    await speaking.feed(silence(640) + speech(640))  # a draft is on its way
    await speaking.close(finish=False)
    await settle()
    assert heard == [] and heard_speaking == []
    assert not any(isinstance(e, SpeechTranscribed) for e in await world.recorded())


async def test_close_with_finish_gives_the_final_of_the_utterance_in_progress() -> None:
    world = build_world()
    stream, heard = open_stream(world)
    await stream.feed(silence(640) + speech(320))
    await stream.close(finish=True)
    assert [(f.utterance, f.start, f.end) for f in finals(heard)] == [(0, 0.32, 0.96)]


async def test_the_speculative_final_is_dropped_when_speech_resumes() -> None:
    world = build_world()
    transcriber = ClipLengths()
    stream, heard = open_stream(world, transcriber=transcriber)
    await feed(stream, silence(640) + speech(320))
    await feed(stream, silence(256), frame=WINDOW)  # a pause: the early final runs
    early = [ms for ms, draft in transcriber.calls if not draft]
    assert early == [832.0]  # 320 preroll + 320 speech + 192 silence
    await feed(stream, speech(320) + silence(640), frame=WINDOW)
    await settle()
    (final,) = finals(heard)
    assert (final.start, final.end) == (0.32, 1.728)  # to 192 ms after the second speech
    assert final.result.transcript.text == "1408 ms"
    assert [ms for ms, draft in transcriber.calls if not draft] == [832.0, 1408.0]
    await stream.close(finish=True)


async def test_a_final_starts_at_128_ms_and_stands_when_the_pause_stays_quiet() -> None:
    world = build_world()
    transcriber = ClipLengths()
    stream, heard = open_stream(world, transcriber=transcriber, policy=Endpointing())
    await feed(stream, silence(640) + speech(320) + silence(640), frame=WINDOW)
    (final,) = finals(heard)
    assert [ms for ms, draft in transcriber.calls if not draft] == [768.0]  # 320+320+128
    assert (final.start, final.end) == (0.32, 1.088)
    await stream.close(finish=True)


async def test_a_final_cut_before_a_faint_sound_starts_again_on_the_longer_cut() -> None:
    world = build_world()
    transcriber = ClipLengths()
    stream, heard = open_stream(world, transcriber=transcriber, policy=Endpointing())
    await feed(stream, silence(640) + speech(320) + silence(128), frame=WINDOW)
    assert [ms for ms, draft in transcriber.calls if not draft] == [768.0]
    await feed(stream, faint(32) + silence(480), frame=WINDOW)
    (final,) = finals(heard)
    assert final.result.transcript.text == "832 ms"  # the faint sound is in the final
    assert (final.start, final.end) == (0.32, 1.152)
    assert [ms for ms, draft in transcriber.calls if not draft] == [768.0, 832.0]
    await stream.close(finish=True)


async def test_a_client_commit_before_settle_ms_keeps_a_faint_sound() -> None:
    world = build_world()
    transcriber = ClipLengths()
    stream, heard = open_stream(world, transcriber=transcriber, policy=Endpointing())
    await feed(stream, silence(640) + speech(320) + silence(128) + faint(32), frame=WINDOW)
    await stream.end_utterance()
    await settle()
    (final,) = finals(heard)
    assert final.result.transcript.text == "800 ms"  # cut at the commit, not at 128 ms
    await stream.close(finish=True)


async def test_drafts_wait_for_a_sure_window_unless_overdue() -> None:
    world = build_world()
    clock = StillClock()
    stream, heard = open_stream(world, partial_ms=100, clock=clock)
    unsure = b"\x03\x00" * (16 * 32)  # 0.5: speech, but below DRAFT_SURE
    await feed(stream, silence(320) + speech(96) + unsure * 5, frame=WINDOW, clock=clock)
    assert partials(heard) == []  # 160 ms since the start, due, but none of it sure
    await feed(stream, speech(32), frame=WINDOW, clock=clock)
    assert len(partials(heard)) == 1  # the first sure window
    await feed(stream, unsure * 6, frame=WINDOW, clock=clock)
    assert len(partials(heard)) == 1  # 192 ms: due, not sure
    await feed(stream, unsure, frame=WINDOW, clock=clock)
    assert len(partials(heard)) == 2  # 224 ms >= twice partial_ms: overdue, so anyway
    await stream.close(finish=True)


async def test_a_draft_that_comes_after_its_utterance_ended_is_dropped() -> None:
    world = build_world()
    clock = StillClock()
    transcriber = HeldDrafts()
    stream, heard = open_stream(world, transcriber=transcriber, partial_ms=100, clock=clock)
    await feed(stream, silence(320) + speech(320), frame=WINDOW, clock=clock)
    assert transcriber.held == 1  # asked for, and still running
    await stream.end_utterance()
    transcriber.release.set()
    await settle()
    assert partials(heard) == [] and len(finals(heard)) == 1
    await stream.close(finish=True)


async def test_end_utterance_forces_a_final_mid_speech() -> None:
    world = build_world()
    stream, heard = open_stream(world)
    await feed(stream, silence(640) + speech(640))
    await stream.end_utterance()
    await settle()
    assert [(f.utterance, f.start, f.end) for f in finals(heard)] == [(0, 0.32, 1.28)]
    await stream.end_utterance()  # nothing in progress: nothing more
    await settle()
    assert len(finals(heard)) == 1
    await feed(stream, speech(320) + silence(640))  # speech goes on: a new utterance
    await stream.close(finish=True)
    assert [f.utterance for f in finals(heard)] == [0, 1]


async def test_an_endless_utterance_is_cut_at_max_utterance_ms() -> None:
    world = build_world()
    stream, heard = open_stream(world, policy=Endpointing(max_utterance_ms=1000))
    await feed(stream, silence(640) + speech(320))
    await feed(stream, speech(2880), frame=WINDOW)
    await stream.close(finish=True)
    cut = finals(heard)
    assert [f.utterance for f in cut] == list(range(len(cut)))
    assert len(cut) >= 3
    assert all(f.end - f.start <= 1.0 + 0.032 for f in cut)  # checked once per frame
    assert cut[0].start == 0.32
    assert cut[-1].end == 3.84  # the last one ends where the stream did


async def test_utterances_cut_mid_speech_do_not_share_audio() -> None:
    """The preroll catches the onset of new speech; after a cut it must not replay the audio
    the previous final already transcribed (its words would be in both finals)."""
    world = build_world()
    stream, heard = open_stream(world, policy=Endpointing(max_utterance_ms=1000))
    await feed(stream, silence(640) + speech(320))
    await feed(stream, speech(2240), frame=WINDOW)
    await stream.end_utterance()  # the client ends one mid-speech too
    await feed(stream, speech(640) + silence(640))
    await stream.close(finish=True)
    cut = [(f.start, f.end) for f in finals(heard)]
    assert len(cut) >= 3
    assert all(after[0] >= before[1] for before, after in itertools.pairwise(cut)), cut


async def test_audio_before_the_preroll_is_forgotten() -> None:
    world = build_world()
    stream, heard = open_stream(world)
    await feed(stream, silence(10_240), frame=640)  # 10 s of silence in 20 ms frames
    # Memory bounded, not 10 s of it: what a start reaches back to (speech run + preroll).
    assert len(stream.audio) <= PREROLL_BYTES + 96 * 32 + WINDOW
    await feed(stream, speech(320) + silence(640))
    (final,) = finals(heard)
    assert (final.start, final.end) == (9.92, 10.752)
    assert final.result.transcript.duration == 0.832  # the model heard no older audio
    await stream.close(finish=True)


@pytest.mark.parametrize("frame", [None, WINDOW, 640], ids=["whole", "32ms", "20ms"])
async def test_the_preroll_is_the_same_whatever_the_frame_size(frame: int | None) -> None:
    """The same audio cuts the same way however it arrives: 320 ms kept before speech."""
    world = build_world()
    stream, heard = open_stream(world)
    await feed(stream, silence(640) + speech(320) + silence(640), frame=frame)
    await stream.close(finish=True)
    (final,) = finals(heard)
    assert (final.start, final.end) == (0.32, 1.152)
    assert final.result.transcript.duration == 0.832


async def test_the_final_lag_is_wall_time_since_the_last_speech() -> None:
    world = build_world()
    clock = StillClock()
    stream, heard = open_stream(world, clock=clock)
    await feed(stream, silence(640) + speech(320))
    clock.t += 0.5  # the client sends the trailing silence half a second later
    await feed(stream, silence(640))
    (final,) = finals(heard)
    assert final.end_of_speech_lag_ms == 500.0
    recorded = await world.recorded()
    lags = [e.end_of_speech_ms for e in recorded if isinstance(e, SpeechTranscribed)]
    assert lags == [500.0]
    await stream.close(finish=True)


async def test_speech_start_is_announced_at_once_and_the_stop_before_its_final() -> None:
    world = build_world()
    notices: list[SpeechStarted | SpeechStopped] = []
    stream, heard = open_stream(world, notices=notices)
    await feed(stream, silence(640) + speech(96), frame=WINDOW)
    # 96 ms of speech start an utterance; the start reaches back over the preroll.
    assert notices == [SpeechStarted(0, 640 + 96 - 96 - 320)]
    await feed(stream, speech(224) + silence(640), frame=WINDOW)
    assert notices[1] == SpeechStopped(
        0, "silence", 320, 640 + 320 + 192
    )  # where the early final cut it
    await stream.close(finish=True)
    assert [f.utterance for f in finals(heard)] == [0]


async def test_manual_utterances_are_what_came_between_commits_whatever_the_voice() -> None:
    world = build_world()
    transcriber = ClipLengths()
    notices: list[SpeechStarted | SpeechStopped] = []
    stream, heard = open_stream(world, transcriber=transcriber, notices=notices, manual=True)
    await feed(stream, silence(640) + speech(320) + silence(640) + speech(320), frame=WINDOW)
    assert notices == []  # voice activity cuts nothing: the client commits
    assert await stream.end_utterance()
    await settle()
    assert notices == [SpeechStopped(0, "client", 0, 1920)]
    assert finals(heard)[0].result.transcript.text == "1920 ms"  # silences included
    assert not await stream.end_utterance()  # nothing since the commit
    await feed(stream, speech(320), frame=WINDOW)
    stream.clear()  # dropped: no final for it
    await feed(stream, silence(160), frame=WINDOW)
    assert await stream.end_utterance()
    await stream.close(finish=True)
    assert [f.result.transcript.text for f in finals(heard)] == ["1920 ms", "160 ms"]
    assert (finals(heard)[1].start, finals(heard)[1].end) == (2.24, 2.4)


async def test_audio_far_ahead_of_real_time_gets_no_drafts() -> None:
    """A burst (a file, a satellite's buffer): drafts would be stale and hold up the final."""
    world = build_world()
    clock = StillClock()
    stream, heard = open_stream(world, partial_ms=100, clock=clock)
    await feed(stream, speech(3000), frame=WINDOW)  # three seconds in no time at all
    burst = len(partials(heard))
    clock.t += 3.0  # real time catches up; from here audio comes as it plays
    await feed(stream, speech(640), frame=WINDOW, clock=clock)
    assert burst <= 3  # the first 300 ms only (all 3 s would give 29)
    assert len(partials(heard)) >= burst + 3
    await stream.close(finish=True)


async def test_a_manual_final_starts_at_the_pause_and_is_kept_if_no_speech_follows() -> None:
    world = build_world()
    transcriber = ClipLengths()
    stream, heard = open_stream(world, transcriber=transcriber, manual=True)
    await feed(stream, speech(320) + silence(800), frame=WINDOW)
    calls = len(transcriber.calls)
    assert await stream.end_utterance()
    await settle()
    # The final was transcribed at the pause (320 ms of speech + 192 ms of silence), before
    # the client's cut, and not again after it.
    assert finals(heard)[0].result.transcript.text == "512 ms"
    assert len(transcriber.calls) == calls
    await feed(stream, speech(320) + silence(320) + speech(320), frame=WINDOW)
    assert await stream.end_utterance()  # speech resumed after the pause: all of it
    await stream.close(finish=True)
    assert finals(heard)[1].result.transcript.text == "960 ms"


async def test_big_frames_in_real_time_still_get_drafts() -> None:
    world = build_world()
    clock = StillClock()
    stream, heard = open_stream(world, partial_ms=100, clock=clock)
    for _ in range(4):  # one second of speech at a time, each as it is recorded
        await feed(stream, speech(1000), clock=clock)
    assert len(partials(heard)) >= 4
    await stream.close(finish=True)


async def test_a_finished_sentence_ends_at_the_pause_not_at_the_endpoint() -> None:
    world = build_world()
    turns = FakeTurns(0.9)
    stream, heard = open_stream(world, policy=SEMANTIC, turns=turns)
    await feed(stream, silence(640) + speech(320) + silence(288), frame=WINDOW)
    (final,) = finals(heard)  # 288 ms of silence: far short of the 500 ms endpoint
    assert (final.start, final.end) == (0.32, 1.152)  # the early final, to the pause
    assert turns.heard == [(320 + 320 + 192) * BYTES_PER_MS]
    await stream.close(finish=True)


async def test_an_unfinished_sentence_waits_for_the_longer_silence() -> None:
    world = build_world()
    stream, heard = open_stream(world, policy=SEMANTIC, turns=FakeTurns(0.1))
    await feed(stream, silence(640) + speech(320) + silence(800), frame=WINDOW)
    assert finals(heard) == []  # past the 500 ms endpoint, not yet 1000 ms
    await feed(stream, silence(224), frame=WINDOW)
    (final,) = finals(heard)
    assert (final.start, final.end) == (0.32, 1.152)  # the early final still serves
    await stream.close(finish=True)


async def test_speech_after_the_verdict_keeps_one_utterance_and_asks_again() -> None:
    world = build_world()
    turns = FakeTurns(0.1)
    stream, heard = open_stream(world, policy=SEMANTIC, turns=turns)
    await feed(stream, silence(640) + speech(320) + silence(320), frame=WINDOW)
    turns.probability = 0.9  # the speaker goes on and finishes
    await feed(stream, speech(320) + silence(288), frame=WINDOW)
    (final,) = finals(heard)
    assert (final.start, final.end) == (0.32, 1.792)
    assert len(turns.heard) == 2
    await stream.close(finish=True)


async def test_a_failing_turn_model_falls_back_to_the_silence_endpoint() -> None:
    world = build_world()
    turns = FakeTurns(0.9)
    turns.fail = True
    stream, heard = open_stream(world, policy=SEMANTIC, turns=turns)
    await feed(stream, silence(640) + speech(320) + silence(416), frame=WINDOW)
    assert finals(heard) == []
    await feed(stream, silence(96), frame=WINDOW)  # 512 ms: the endpoint
    assert len(finals(heard)) == 1
    await stream.close(finish=True)


async def test_without_semantic_turns_the_model_is_not_asked() -> None:
    world = build_world()
    turns = FakeTurns(0.9)
    stream, heard = open_stream(world, turns=turns)  # the default policy: silence only
    await feed(stream, silence(640) + speech(320) + silence(640), frame=WINDOW)
    assert turns.heard == [] and len(finals(heard)) == 1
    await stream.close(finish=True)
