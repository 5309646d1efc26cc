"""Endpointing in audio time: where an utterance starts, pauses, resumes and ends.

The stream-level rules of the policy (preroll, max utterance) are in test_utterance_stream.
"""

from __future__ import annotations

from domain.utterances import WINDOW_MS, Endpointing, UtteranceDetector

SPEECH, SILENCE, UNSURE = 1.0, 0.0, 0.4  # UNSURE: between the end and start thresholds
FAINT = 0.2  # below the end threshold (silence), above the quiet threshold


def push_all(detector: UtteranceDetector, probabilities: list[float]) -> list[str | None]:
    return [detector.push(p) for p in probabilities]


def started(policy: Endpointing | None = None) -> UtteranceDetector:
    detector = UtteranceDetector(policy)
    changes = push_all(detector, [SPEECH] * (detector.policy.min_speech_ms // WINDOW_MS))
    assert changes[-1] == "start"
    return detector


def test_an_utterance_starts_after_min_speech_in_a_row() -> None:
    detector = UtteranceDetector()  # 96 ms: three windows
    assert push_all(detector, [SPEECH, SPEECH, SILENCE, SPEECH, SPEECH]) == [None] * 5
    assert detector.push(SPEECH) == "start"
    assert detector.in_speech
    assert push_all(detector, [SPEECH] * 5) == [None] * 5  # no second start while speaking


def test_probabilities_below_the_start_threshold_never_start_one() -> None:
    detector = UtteranceDetector()
    assert push_all(detector, [UNSURE] * 50) == [None] * 50
    assert not detector.in_speech


def test_silence_pauses_after_early_ms_and_ends_after_endpoint_ms() -> None:
    detector = started()
    changes = push_all(detector, [SILENCE] * 16)  # 16 windows: 512 ms >= 500 ms
    assert changes[3] == "pause"  # 4 windows: 128 ms of silence
    assert changes[15] == "end"
    assert [c for c in changes if c is not None] == ["pause", "end"]
    assert detector.cut_is_quiet()
    assert not detector.in_speech


def test_a_pause_that_is_not_quiet_by_settle_ms_is_cut_again_there() -> None:
    detector = started()
    assert push_all(detector, [SILENCE] * 4) == [None, None, None, "pause"]  # 128 ms
    assert detector.cut_is_quiet()
    assert detector.push(FAINT) is None
    assert not detector.cut_is_quiet()  # a faint sound after the cut
    assert detector.push(SILENCE) == "pause"  # 192 ms: it starts again, on the longer cut
    assert detector.cut_is_quiet()  # settled: the longer cut stands
    assert [c for c in push_all(detector, [SILENCE] * 10) if c is not None] == ["end"]


def test_faint_sound_after_settle_ms_keeps_the_cut() -> None:
    detector = started()
    changes = push_all(detector, [SILENCE] * 6 + [FAINT] * 10)
    assert [c for c in changes if c is not None] == ["pause", "end"]
    assert detector.cut_is_quiet()


def test_after_a_noisy_pause_the_next_final_starts_at_settle_ms_until_one_is_quiet() -> None:
    detector = started()
    push_all(detector, [SILENCE] * 4 + [FAINT] * 12)  # noisy: cut at 128, again at 192
    assert detector.push(SPEECH) is None and push_all(detector, [SPEECH] * 2)[-1] == "start"
    changes = push_all(detector, [SILENCE] * 4 + [FAINT] * 2 + [SILENCE])
    assert changes[3] is None  # not at 128 ms any more
    assert changes[5] == "pause"  # at 192 ms, once
    assert detector.push(SPEECH) == "resume"  # that pause's 128-192 ms were faint: still noisy
    changes = push_all(detector, [SILENCE] * 7)
    assert changes[5] == "pause"  # 192 ms again; its 128-192 ms were quiet
    assert detector.push(SPEECH) == "resume"
    assert push_all(detector, [SILENCE] * 4)[3] == "pause"  # quiet again: 128 ms


def test_an_end_before_settle_ms_keeps_a_cut_only_if_quiet() -> None:
    policy = Endpointing(endpoint_ms=160)
    detector = started(policy)
    changes = push_all(detector, [SILENCE] * 4 + [FAINT])
    assert changes == [None, None, None, "pause", "end"]
    assert not detector.cut_is_quiet()  # the stream cuts again where it ended
    detector = started(policy)
    assert push_all(detector, [SILENCE] * 5)[-1] == "end"
    assert detector.cut_is_quiet()


def test_uncertain_windows_keep_an_utterance_going() -> None:
    detector = started()
    assert push_all(detector, [UNSURE] * 40) == [None] * 40
    assert detector.in_speech and detector.silence_ms == 0


def test_speech_after_a_pause_resumes_and_restarts_the_silence_count() -> None:
    detector = started()
    assert push_all(detector, [SILENCE] * 10)[3] == "pause"
    assert detector.push(SPEECH) == "resume"
    changes = push_all(detector, [SILENCE] * 15)  # 10 + 15 silent windows, but not in a row
    assert changes[3] == "pause"
    assert "end" not in changes
    assert detector.push(SILENCE) == "end"


def test_speech_before_the_pause_is_not_a_resume() -> None:
    detector = started()
    assert push_all(detector, [SILENCE] * 3 + [SPEECH]) == [None] * 4  # 96 ms < early_ms
    assert push_all(detector, [SILENCE] * 15)[-1] is None  # the count started again
    assert detector.push(SILENCE) == "end"


def test_a_new_utterance_needs_min_speech_again_after_an_end() -> None:
    detector = started()
    push_all(detector, [SILENCE] * 16)
    assert push_all(detector, [SPEECH, SPEECH]) == [None, None]
    assert detector.push(SPEECH) == "start"


def test_force_end_ends_only_an_utterance_in_progress() -> None:
    detector = UtteranceDetector()
    assert detector.force_end() is False
    push_all(detector, [SPEECH, SPEECH])
    assert detector.force_end() is False  # not started yet, and the run is forgotten
    assert detector.push(SPEECH) is None
    detector = started()
    push_all(detector, [SILENCE] * 3)
    assert detector.force_end() is True
    assert not detector.in_speech
    assert detector.force_end() is False
    assert push_all(detector, [SPEECH, SPEECH, SPEECH]) == [None, None, "start"]
    assert push_all(detector, [SILENCE] * 4)[-1] == "pause"  # silence counted from the start


def test_a_custom_policy_rounds_early_ms_down_to_whole_windows() -> None:
    policy = Endpointing(min_speech_ms=64, endpoint_ms=320, early_ms=100)
    detector = started(policy)  # two windows
    changes = push_all(detector, [SILENCE] * 10)
    assert changes[2] == "pause"  # 96 ms: the last whole window within 100 ms
    assert changes[9] == "end"  # 320 ms
    assert [c for c in changes if c is not None] == ["pause", "end"]


def test_semantic_turns_are_checked_after_turn_ms_and_unfinished_ones_wait_longer() -> None:
    detector = started(Endpointing(semantic=True, incomplete_ms=1000, early_ms=96))
    due = []
    for _ in range(6):
        due.append((detector.push(SILENCE), detector.turn_due))
    assert due[2] == ("pause", False) and due[5] == (None, True)  # 96 ms, then 192 ms
    assert [d for _, d in due].count(True) == 1
    detector.wait_longer()  # the turn model: not finished
    assert "end" not in push_all(detector, [SILENCE] * 25)  # 992 ms
    assert detector.push(SILENCE) == "end"
    again = started(Endpointing(semantic=True, incomplete_ms=1000))
    again.wait_longer()
    push_all(again, [SILENCE] * 6)
    assert again.push(SPEECH) == "resume"  # speech: the next pause gets the usual endpoint
    assert push_all(again, [SILENCE] * 16)[-1] == "end"


def test_a_cut_again_at_settle_ms_still_asks_the_turn_model_there() -> None:
    detector = started(Endpointing(semantic=True))  # turn_ms = settle_ms = 192
    changes = push_all(detector, [SILENCE] * 4 + [FAINT])
    assert changes[3] == "pause" and not detector.turn_due
    assert detector.push(SILENCE) == "pause"  # cut again
    assert detector.turn_due  # and judged at the same window
    assert detector.push(SILENCE) is None and not detector.turn_due
