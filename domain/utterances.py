"""Endpointing: where utterances start and end, from per-window speech probabilities.

Driven by audio time (one call per 32 ms window), not by the wall clock, so the same audio
always cuts the same way however fast it arrives.
"""

from __future__ import annotations

import msgspec

WINDOW_MS = 32  # Silero VAD decides on 512 samples at 16 kHz


class Endpointing(msgspec.Struct, frozen=True):
    start_threshold: float = 0.5
    end_threshold: float = 0.35
    min_speech_ms: int = 96  # this much speech in a row starts an utterance
    endpoint_ms: int = 500  # this much silence ends it
    # The final's transcription starts speculatively after `early_ms` of silence. Cut that
    # soon it loses a soft last sound now and then (measured on recorded speech), so by
    # `settle_ms` the silence since the cut must have been quiet (every window's probability
    # below `quiet_threshold`), or the final starts again on the longer cut. A stream whose
    # pauses are not quiet (noise) starts its finals at `settle_ms` until one is.
    early_ms: int = 128
    settle_ms: int = 192
    quiet_threshold: float = 0.15
    preroll_ms: int = 320  # audio kept from before the detected start
    max_utterance_ms: int = 30_000  # bounded memory: a longer one is cut here
    # Semantic turn detection: after `turn_ms` of silence a turn model judges whether the
    # sentence is done; done: the utterance ends there; not: it waits for `incomplete_ms`.
    semantic: bool = False
    turn_ms: int = 192  # the turn model was trained on ~200 ms of trailing silence
    complete_threshold: float = 0.5
    incomplete_ms: int = 700
    # Set: a verdict at least this sure, while the early final covers the pause, is a likely
    # end of turn (EagerEnd) before the end is confirmed.
    eager_threshold: float | None = None


def _windows(ms: int) -> int:
    return ms // WINDOW_MS * WINDOW_MS


class UtteranceDetector:
    """Feeds on speech probabilities; says when an utterance starts, pauses, resumes, ends."""

    def __init__(self, policy: Endpointing | None = None) -> None:
        self.policy = policy or Endpointing()
        self.in_speech = False
        self.speech_run_ms = 0
        self.silence_ms = 0
        self.endpoint_ms = self.policy.endpoint_ms  # this utterance's: a turn model may move it
        self.turn_due = False  # set by the push after which the turn model should judge
        self.quiet_pauses = True  # the last pause was quiet: the next final may start early
        self.longer = False  # the turn model judged this pause unfinished
        self._early = min(_windows(self.policy.early_ms), _windows(self.policy.settle_ms))
        self._settle = _windows(self.policy.settle_ms)
        self._cut_ms: int | None = None  # silence at which the final in flight was cut
        self._peak = 0.0  # the highest probability between early_ms and settle_ms
        self._settled = False  # this pause reached settle_ms
        self._checked = False

    def push(self, probability: float) -> str | None:
        """'start', 'pause' (cut here: the final starts, or starts again), 'resume' (speech
        after a pause), 'end', or None. `turn_due` says when the turn model should judge."""
        policy = self.policy
        self.turn_due = False
        if not self.in_speech:
            self.speech_run_ms = (
                self.speech_run_ms + WINDOW_MS if probability >= policy.start_threshold else 0
            )
            if self.speech_run_ms >= policy.min_speech_ms:
                self.in_speech = True
                self._speech_again()
                return "start"
            return None
        if probability >= policy.end_threshold:
            resumed = self._cut_ms is not None
            self._speech_again()
            return "resume" if resumed else None
        self.silence_ms += WINDOW_MS
        silence = self.silence_ms
        if self._early < silence <= self._settle:
            self._peak = max(self._peak, probability)
        if policy.semantic and not self._checked and silence >= _windows(policy.turn_ms):
            self._checked = self.turn_due = True
        if silence >= self.endpoint_ms:
            self.in_speech, self.speech_run_ms = False, 0
            return "end"
        if silence == self._settle:
            was_cut_early, self._settled = self._cut_ms is not None, True
            self.quiet_pauses = self._peak < policy.quiet_threshold
            if was_cut_early and not self.quiet_pauses:
                self._cut_ms = silence  # the early cut left out sound: cut again here
                return "pause"
        if self._cut_ms is None and silence >= (self._early if self.quiet_pauses else self._settle):
            self._cut_ms = silence
            return "pause"
        return None

    def cut_is_quiet(self) -> bool:
        """Whether the final's cut may stand: the pause settled (a cut that left out sound
        was made again there), or all it left out so far was quiet."""
        return self._settled or self._peak < self.policy.quiet_threshold

    def _speech_again(self) -> None:
        self.silence_ms = 0
        self.endpoint_ms, self.longer = self.policy.endpoint_ms, False
        self._cut_ms, self._peak, self._settled, self._checked = None, 0.0, False, False

    def wait_longer(self) -> None:
        """The turn model judged the sentence unfinished: this pause needs more silence."""
        self.endpoint_ms = max(self.policy.endpoint_ms, self.policy.incomplete_ms)
        self.longer = True

    def retune(self, policy: Endpointing) -> None:
        """New thresholds and waits from the next window (the early cut stays as it was)."""
        self.policy = policy
        self.endpoint_ms = policy.endpoint_ms
        if self.longer:
            self.wait_longer()

    def force_end(self) -> bool:
        """End the utterance now (the client said so); False if none was in progress."""
        was = self.in_speech
        self.in_speech, self.speech_run_ms, self.silence_ms = False, 0, 0
        return was
