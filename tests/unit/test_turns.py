"""Turns: the decisions for given speech probabilities, commits and job completions.

Positions are bytes of the 16 kHz stream: W is one 32 ms window. With the default policy an
utterance starts on the 3rd window of speech and reaches back 3 + 10 windows (speech run and
preroll); its final starts early after 4 silent windows (128 ms), a faint sound before the
6th (192 ms, settle) starts it again there, and 16 silent windows (512 ms) end it.
"""

from __future__ import annotations

import msgspec

from domain.turn_decisions import (
    CancelDraft,
    CancelFinal,
    CancelTurnCheck,
    Decision,
    EagerEnd,
    EagerEndWithdrawn,
    Forget,
    ReasonChanged,
    StartDraft,
    StartFinal,
    StartTurnCheck,
    UtteranceEnded,
    UtteranceStarted,
)
from domain.turns import TURN_MS, Turns
from domain.utterances import Endpointing

W = 1024
SPEECH, SILENCE, FAINT, UNSURE = 1.0, 0.0, 0.2, 0.5  # UNSURE: speech, not sure enough to draft
SEMANTIC = Endpointing(semantic=True, incomplete_ms=1000)


def hear(
    turns: Turns,
    probabilities: list[float],
    *,
    now: float | None = None,
    per: int = 1,
    forget: bool = False,
) -> list[Decision]:
    """The windows in pieces of `per` windows (a 20 ms frame holds less than one: 1 is the
    usual case), each arriving as it is recorded, or all at `now`. Without `forget`, the
    Forget decisions are left out."""
    out: list[Decision] = []
    for at in range(0, len(probabilities), per):
        piece = probabilities[at : at + per]
        arrived = at_window(turns.position // W + len(piece)) if now is None else now
        out += turns.heard(piece, arrived, frame=per * W)
    return [d for d in out if forget or not isinstance(d, Forget)]


def at_window(window: int) -> float:
    """The stream time, in seconds, at the end of window `window` (counted from 1)."""
    return window * W / 32_000


def of(kind: type, decisions: list[Decision]) -> list[Decision]:
    return [d for d in decisions if isinstance(d, kind)]


def ended(decisions: list[Decision]) -> UtteranceEnded:
    (end,) = of(UtteranceEnded, decisions)
    assert isinstance(end, UtteranceEnded)
    return end


def speaking(policy: Endpointing | None = None, judge: bool = False) -> Turns:
    """An utterance in progress from 10 W: 20 windows of silence, 10 of speech (no drafts)."""
    turns = Turns(policy, partial_ms=100_000, judge=judge)
    assert of(UtteranceStarted, hear(turns, [SILENCE] * 20 + [SPEECH] * 10)) == [
        UtteranceStarted(0, 10 * W)
    ]
    return turns


def test_an_utterance_starts_reaching_back_over_the_speech_run_and_the_preroll() -> None:
    turns = Turns()
    assert hear(turns, [SILENCE] * 20 + [SPEECH] * 2) == []
    assert hear(turns, [SPEECH]) == [UtteranceStarted(0, (23 - 3 - 10) * W)]
    assert turns.in_progress
    short = Turns()
    assert hear(short, [SILENCE] * 5 + [SPEECH] * 3) == [UtteranceStarted(0, 0)]  # not before 0


def test_silence_starts_the_final_early_and_ends_the_utterance_at_the_endpoint() -> None:
    turns = speaking()
    assert hear(turns, [SILENCE] * 4) == [StartFinal(0, 10 * W, 34 * W)]  # 128 ms of pause
    assert hear(turns, [SILENCE] * 11) == []
    out = hear(turns, [SILENCE])  # 512 ms
    assert out == [UtteranceEnded(0, 10 * W, 34 * W, 34 * W, "silence", 0, at_window(30))]
    assert not turns.in_progress and turns.utterance == 1


def test_the_utterance_keeps_the_time_of_its_last_speech() -> None:
    turns = Turns()
    hear(turns, [SPEECH] * 5 + [UNSURE])  # unsure is still speech to the end threshold
    assert ended(hear(turns, [FAINT] * 16)).last_speech_at == at_window(6)


def test_speech_after_the_pause_cancels_the_early_final() -> None:
    turns = speaking()
    hear(turns, [SILENCE] * 5)
    assert hear(turns, [SPEECH]) == [CancelFinal(0)]
    assert turns.in_progress
    out = hear(turns, [SILENCE] * 16)
    assert out[0] == StartFinal(1, 10 * W, 40 * W)
    assert (ended(out).end, ended(out).early) == (40 * W, 1)


def test_a_faint_sound_after_the_early_cut_starts_the_final_again_at_settle_ms() -> None:
    turns = speaking()
    out = hear(turns, [SILENCE] * 4 + [FAINT, SILENCE])
    assert out == [StartFinal(0, 10 * W, 34 * W), CancelFinal(0), StartFinal(1, 10 * W, 36 * W)]
    end = ended(hear(turns, [SILENCE] * 10))
    assert (end.end, end.early) == (36 * W, 1)


def test_an_end_before_settle_ms_drops_an_early_final_that_left_out_sound() -> None:
    turns = speaking(Endpointing(endpoint_ms=160))
    out = hear(turns, [SILENCE] * 4 + [FAINT])
    assert out[-2:] == [
        CancelFinal(0),
        UtteranceEnded(0, 10 * W, 35 * W, 35 * W, "silence", None, at_window(30)),
    ]


def test_a_commit_ends_the_utterance_with_the_early_final_only_if_its_pause_was_quiet() -> None:
    quiet = speaking()
    hear(quiet, [SILENCE] * 5)
    end = ended(quiet.end_utterance("client"))
    assert (end.end, end.early, end.reason) == (34 * W, 0, "client")
    faint = speaking()
    hear(faint, [SILENCE] * 4 + [FAINT])
    out = faint.end_utterance("client")
    assert out[0] == CancelFinal(0)
    assert (ended(out).end, ended(out).early) == (35 * W, None)  # up to the commit
    assert faint.end_utterance("client") == []  # nothing in progress


def test_an_utterance_is_cut_at_max_utterance_ms_and_the_next_does_not_reach_back() -> None:
    turns = Turns(Endpointing(max_utterance_ms=1000), partial_ms=100_000)
    first = ended(hear(turns, [SILENCE] * 20 + [SPEECH] * 22))
    assert (first.start, first.end, first.reason) == (10 * W, 42 * W, "length")  # 1024 ms
    assert hear(turns, [SPEECH] * 3) == [UtteranceStarted(1, 42 * W)]  # not 13 windows back
    assert ended(turns.end_utterance("stream_end")).reason == "stream_end"


def test_a_finished_sentence_ends_at_the_next_window_after_the_verdict() -> None:
    turns = speaking(SEMANTIC, judge=True)
    out = hear(turns, [SILENCE] * 6)
    assert of(StartTurnCheck, out) == [StartTurnCheck(1, 10 * W, 36 * W)]  # at 192 ms
    turns.judged(1, 0.9)
    assert turns.in_progress  # a verdict acts at a window, like any other cut
    end = ended(hear(turns, [SILENCE]))
    assert (end.reason, end.end, end.early) == ("turn", 34 * W, 0)


def test_an_unfinished_sentence_waits_for_incomplete_ms() -> None:
    turns = speaking(SEMANTIC, judge=True)
    hear(turns, [SILENCE] * 6)
    turns.judged(1, 0.1)
    assert of(UtteranceEnded, hear(turns, [SILENCE] * 25)) == []  # 992 ms
    assert ended(hear(turns, [SILENCE])).reason == "silence"


def test_without_a_verdict_the_silence_endpoint_decides() -> None:
    turns = speaking(SEMANTIC, judge=True)
    hear(turns, [SILENCE] * 6)
    turns.judged(1, None)  # the turn model failed
    assert of(UtteranceEnded, hear(turns, [SILENCE] * 9)) == []
    assert ended(hear(turns, [SILENCE])).reason == "silence"  # 512 ms


def test_a_verdict_after_speech_resumed_is_dropped() -> None:
    turns = speaking(SEMANTIC, judge=True)
    hear(turns, [SILENCE] * 6)
    assert hear(turns, [SPEECH]) == [CancelFinal(0), CancelTurnCheck(1)]
    turns.judged(1, 0.9)  # too late
    assert of(UtteranceEnded, hear(turns, [SILENCE] * 15)) == []
    assert ended(hear(turns, [SILENCE])).reason == "silence"


def test_the_turn_model_hears_the_last_8_s_and_only_with_semantic_turns() -> None:
    turns = Turns(SEMANTIC, partial_ms=100_000, judge=True)
    (check,) = of(StartTurnCheck, hear(turns, [SPEECH] * 400 + [SILENCE] * 6))
    assert check == StartTurnCheck(1, 406 * W - TURN_MS * 32, 406 * W)
    assert of(StartTurnCheck, hear(speaking(SEMANTIC), [SILENCE] * 6)) == []  # no model
    assert of(StartTurnCheck, hear(speaking(judge=True), [SILENCE] * 6)) == []  # not semantic
    manual = Turns(SEMANTIC, manual=True, judge=True)
    assert of(StartTurnCheck, hear(manual, [SPEECH] * 10 + [SILENCE] * 6)) == []


def test_drafts_come_every_partial_ms_while_speech_goes_on() -> None:
    turns = Turns(partial_ms=100)
    assert of(StartDraft, hear(turns, [SILENCE] * 10 + [SPEECH] * 6)) == []  # 96 ms < 100
    assert hear(turns, [SPEECH]) == [StartDraft(0, 0, 17 * W)]
    assert of(StartDraft, hear(turns, [SPEECH] * 6)) == []  # one at a time
    turns.draft_done()
    assert hear(turns, [SPEECH]) == [StartDraft(0, 0, 24 * W)]
    turns.draft_done()
    assert of(StartDraft, hear(turns, [SPEECH] * 2 + [SILENCE] * 6)) == []  # not in the pause


def test_drafts_wait_for_a_sure_window_unless_twice_overdue() -> None:
    turns = Turns(partial_ms=100)
    hear(turns, [SPEECH] * 3)
    assert hear(turns, [UNSURE] * 6) == []  # 192 ms: due, not sure
    assert hear(turns, [UNSURE]) == [StartDraft(0, 0, 10 * W)]  # 224 ms >= twice 100


def test_no_drafts_for_audio_ahead_of_real_time_unless_big_frames_explain_it() -> None:
    burst = Turns(partial_ms=100)
    drafts = of(StartDraft, hear(burst, [SPEECH] * 100, now=0.0))  # 3.2 s at once
    assert drafts == [StartDraft(0, 0, 7 * W)]  # in the first 300 ms only
    burst.draft_done()
    assert of(StartDraft, hear(burst, [SPEECH] * 100, now=0.0)) == []
    assert of(StartDraft, hear(burst, [SPEECH], now=6.4)) != []  # real time caught up
    frames = Turns(partial_ms=100)  # one-second frames in real time: a frame ahead
    assert of(StartDraft, hear(frames, [SPEECH] * 31, per=31)) != []


def test_manual_utterances_run_from_commit_to_commit_whatever_the_voice() -> None:
    turns = Turns(manual=True, partial_ms=100_000)
    out = hear(turns, [SILENCE] * 20 + [SPEECH] * 10 + [SILENCE] * 30)
    assert out == [StartFinal(0, 0, 34 * W)]  # no start, no end: the pause starts the final
    end = ended(turns.end_utterance("client"))
    assert (end.start, end.end, end.closed_at, end.early) == (0, 34 * W, 60 * W, 0)
    out = hear(turns, [SPEECH] * 10 + [SILENCE] * 5 + [SPEECH])
    assert out == [StartFinal(1, 60 * W, 74 * W), CancelFinal(1)]  # speech after the pause
    end = ended(turns.end_utterance("client"))
    assert (end.start, end.end, end.early) == (60 * W, 76 * W, None)


def test_clear_drops_the_utterance_and_its_jobs() -> None:
    turns = Turns(partial_ms=100)
    hear(turns, [SPEECH] * 10 + [SILENCE] * 4)
    assert turns.clear() == [CancelDraft(), CancelFinal(0)]  # the draft is still running
    assert not turns.in_progress and turns.end_utterance("client") == []
    manual = Turns(manual=True)
    hear(manual, [SPEECH] * 10)
    manual.clear()
    hear(manual, [SILENCE] * 5)
    assert ended(manual.end_utterance("client")).start == 10 * W  # from the clear


def test_finalize_ends_the_utterance_or_relabels_the_last_final_still_to_come() -> None:
    turns = speaking()
    assert ended(turns.finalize()).reason == "client"
    assert ended(hear(turns, [SPEECH] * 10 + [SILENCE] * 16)).reason == "silence"
    assert turns.finalize() == [ReasonChanged(1, "client")]
    assert turns.transcribed(0) == "client"
    assert turns.transcribed(1) == "client"
    assert turns.finalize() == []  # neither: nothing to say


def test_audio_is_forgotten_except_what_a_start_or_an_unfinished_final_needs() -> None:
    turns = Turns()
    assert of(Forget, hear(turns, [SILENCE] * 20, forget=True))[-1] == Forget((20 - 13) * W)
    hear(turns, [SPEECH] * 10)
    out = hear(turns, [SILENCE] * 30, forget=True)  # ended at 46: its final is to come
    assert of(Forget, out)[-1] == Forget(10 * W)  # where it starts
    assert turns.transcribed(0) == "silence"
    assert hear(turns, [SILENCE], forget=True) == [Forget((61 - 13) * W)]


def test_the_same_audio_gets_the_same_cuts_however_it_is_cut_into_frames() -> None:
    probabilities = ([SILENCE] * 7 + [SPEECH] * 9 + [FAINT] + [SILENCE] * 20) * 6
    cuts = []
    for per in (1, 3, 8):
        decisions = hear(Turns(partial_ms=100_000), probabilities, per=per)
        cuts.append(
            [  # the time of the last speech is when its piece came, not a cut
                msgspec.structs.replace(d, last_speech_at=0.0)
                if isinstance(d, UtteranceEnded)
                else d
                for d in decisions
            ]
        )
    assert cuts[0] == cuts[1] == cuts[2]
    assert [d.reason for d in cuts[0] if isinstance(d, UtteranceEnded)] == ["silence"] * 6


EAGER = Endpointing(semantic=True, incomplete_ms=1000, complete_threshold=0.7, eager_threshold=0.4)


def test_an_eager_end_comes_with_the_verdict_and_the_end_confirms_it() -> None:
    turns = speaking(EAGER, judge=True)
    hear(turns, [SILENCE] * 6)  # the early final (job 0) at 128 ms, the check at 192 ms
    turns.judged(1, 0.5)  # likely, not sure: eager now, the end after incomplete_ms
    assert of(EagerEnd, hear(turns, [SILENCE])) == [EagerEnd(0, 0, 10 * W, 34 * W, 0.5)]
    assert of(UtteranceEnded, hear(turns, [SILENCE] * 24)) == []  # 992 ms
    end = ended(hear(turns, [SILENCE]))
    assert (end.reason, end.early, end.confidence) == ("silence", 0, 0.5)
    assert of(EagerEndWithdrawn, hear(turns, [SPEECH] * 5)) == []  # a new utterance


def test_a_sure_verdict_is_eager_and_ends_the_turn_at_once() -> None:
    turns = speaking(EAGER, judge=True)
    hear(turns, [SILENCE] * 6)
    turns.judged(1, 0.9)
    out = hear(turns, [SILENCE])
    assert [type(d) for d in out] == [EagerEnd, UtteranceEnded]
    assert ended(out).confidence == 0.9


def test_speech_after_an_eager_end_withdraws_it_and_the_next_pause_is_judged_again() -> None:
    turns = speaking(EAGER, judge=True)
    hear(turns, [SILENCE] * 6)
    turns.judged(1, 0.5)
    hear(turns, [SILENCE] * 10)
    assert hear(turns, [SPEECH]) == [CancelFinal(0), EagerEndWithdrawn(0)]
    assert hear(turns, [SPEECH] * 5) == []  # withdrawn once
    out = hear(turns, [SILENCE] * 6)
    (check,) = of(StartTurnCheck, out)
    assert isinstance(check, StartTurnCheck)
    turns.judged(check.check, 0.45)
    (eager,) = of(EagerEnd, hear(turns, [SILENCE]))
    assert isinstance(eager, EagerEnd) and (eager.utterance, eager.probability) == (0, 0.45)


def test_no_eager_end_below_the_threshold_or_without_the_setting() -> None:
    below = speaking(EAGER, judge=True)
    hear(below, [SILENCE] * 6)
    below.judged(1, 0.39)
    out = hear(below, [SILENCE] * 26)
    assert of(EagerEnd, out) == [] and ended(out).confidence == 0.39
    assert of(EagerEndWithdrawn, hear(below, [SPEECH] * 5)) == []
    plain = speaking(SEMANTIC, judge=True)  # no eager_threshold: as before
    hear(plain, [SILENCE] * 6)
    plain.judged(1, 0.9)
    assert [type(d) for d in hear(plain, [SILENCE])] == [UtteranceEnded]


def test_retuned_thresholds_and_waits_apply_from_the_next_window() -> None:
    turns = speaking(EAGER, judge=True)
    hear(turns, [SILENCE] * 6)
    turns.retune(msgspec.structs.replace(EAGER, complete_threshold=0.95, eager_threshold=None))
    turns.judged(1, 0.9)  # sure enough before, not now; and no eager end
    assert hear(turns, [SILENCE]) == []
    shorter = msgspec.structs.replace(EAGER, endpoint_ms=224, incomplete_ms=224)
    turns.retune(shorter)  # a shorter wait, for the pause going on
    assert ended(hear(turns, [SILENCE])).reason == "silence"  # 256 ms of silence
