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
    early_ms: int = 192  # silence after which the final's transcription starts, speculatively
    # (cut sooner, it loses the tail of the last word: measured on recorded speech)
    preroll_ms: int = 320  # audio kept from before the detected start
    max_utterance_ms: int = 30_000  # bounded memory: a longer one is cut here
    # Semantic turn detection: after `turn_ms` of silence a turn model judges whether the
    # sentence is done; done: the utterance ends there; not: it waits for `incomplete_ms`.
    semantic: bool = False
    turn_ms: int = 192  # the turn model was trained on ~200 ms of trailing silence
    complete_threshold: float = 0.5
    incomplete_ms: int = 700


class UtteranceDetector:
    """Feeds on speech probabilities; says when an utterance starts, pauses, resumes, ends."""

    def __init__(self, policy: Endpointing | None = None) -> None:
        self.policy = policy or Endpointing()
        self.in_speech = False
        self.speech_run_ms = 0
        self.silence_ms = 0
        self.endpoint_ms = self.policy.endpoint_ms  # this utterance's: a turn model may move it

    def push(self, probability: float) -> str | None:
        """'start', 'pause' (early_ms of silence), 'check' (turn_ms, semantic), 'resume',
        'end', or None."""
        policy = self.policy
        if not self.in_speech:
            self.speech_run_ms = (
                self.speech_run_ms + WINDOW_MS if probability >= policy.start_threshold else 0
            )
            if self.speech_run_ms >= policy.min_speech_ms:
                self.in_speech, self.silence_ms = True, 0
                self.endpoint_ms = policy.endpoint_ms
                return "start"
            return None
        if probability < policy.end_threshold:
            self.silence_ms += WINDOW_MS
            if self.silence_ms >= self.endpoint_ms:
                self.in_speech, self.speech_run_ms = False, 0
                return "end"
            if self.silence_ms == policy.early_ms // WINDOW_MS * WINDOW_MS:
                return "pause"
            if policy.semantic and self.silence_ms == policy.turn_ms // WINDOW_MS * WINDOW_MS:
                return "check"
            return None
        resumed = self.silence_ms >= policy.early_ms // WINDOW_MS * WINDOW_MS
        self.silence_ms = 0
        self.endpoint_ms = policy.endpoint_ms
        return "resume" if resumed else None

    def wait_longer(self) -> None:
        """The turn model judged the sentence unfinished: this pause needs more silence."""
        self.endpoint_ms = max(self.policy.endpoint_ms, self.policy.incomplete_ms)

    def force_end(self) -> bool:
        """End the utterance now (the client said so); False if none was in progress."""
        was = self.in_speech
        self.in_speech, self.speech_run_ms, self.silence_ms = False, 0, 0
        return was
