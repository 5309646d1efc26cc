"""Endpointing in audio time: where an utterance starts, pauses, resumes and ends.

The stream-level rules of the policy (preroll, max utterance) are in test_utterance_stream.
"""

from __future__ import annotations

from domain.utterances import WINDOW_MS, Endpointing, UtteranceDetector

SPEECH, SILENCE, UNSURE = 1.0, 0.0, 0.4  # UNSURE: between the end and start thresholds


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
    assert changes[5] == "pause"  # 6 windows: 192 ms of silence
    assert changes[15] == "end"
    assert [c for c in changes if c is not None] == ["pause", "end"]
    assert not detector.in_speech


def test_uncertain_windows_keep_an_utterance_going() -> None:
    detector = started()
    assert push_all(detector, [UNSURE] * 40) == [None] * 40
    assert detector.in_speech and detector.silence_ms == 0


def test_speech_after_a_pause_resumes_and_restarts_the_silence_count() -> None:
    detector = started()
    assert push_all(detector, [SILENCE] * 10)[5] == "pause"
    assert detector.push(SPEECH) == "resume"
    changes = push_all(detector, [SILENCE] * 15)  # 10 + 15 silent windows, but not in a row
    assert changes[5] == "pause"
    assert "end" not in changes
    assert detector.push(SILENCE) == "end"


def test_speech_before_the_pause_is_not_a_resume() -> None:
    detector = started()
    assert push_all(detector, [SILENCE] * 5 + [SPEECH]) == [None] * 6  # 160 ms < early_ms
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
    assert push_all(detector, [SILENCE] * 6)[-1] == "pause"  # silence counted from the start


def test_a_custom_policy_rounds_early_ms_down_to_whole_windows() -> None:
    policy = Endpointing(min_speech_ms=64, endpoint_ms=320, early_ms=100)
    detector = started(policy)  # two windows
    changes = push_all(detector, [SILENCE] * 10)
    assert changes[2] == "pause"  # 96 ms: the last whole window within 100 ms
    assert changes[9] == "end"  # 320 ms
    assert [c for c in changes if c is not None] == ["pause", "end"]


def test_semantic_turns_are_checked_after_turn_ms_and_unfinished_ones_wait_longer() -> None:
    detector = started(Endpointing(semantic=True, incomplete_ms=1000, early_ms=96))
    changes = push_all(detector, [SILENCE] * 6)
    assert (changes[2], changes[5]) == ("pause", "check")  # 96 ms, then 192 ms
    detector.wait_longer()  # the turn model: not finished
    assert "end" not in push_all(detector, [SILENCE] * 25)  # 992 ms
    assert detector.push(SILENCE) == "end"
    again = started(Endpointing(semantic=True, incomplete_ms=1000))
    again.wait_longer()
    push_all(again, [SILENCE] * 6)
    assert again.push(SPEECH) == "resume"  # speech: the next pause gets the usual endpoint
    assert push_all(again, [SILENCE] * 16)[-1] == "end"
