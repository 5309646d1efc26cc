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
    early_ms: int = 192  # silence after which a final transcription may start early:
    # about a comma's pause: a final 500 ms after speech needs the model to start early
    preroll_ms: int = 320  # audio kept from before the detected start
    max_utterance_ms: int = 30_000  # bounded memory: a longer one is cut here


class UtteranceDetector:
    """Feeds on speech probabilities; says when an utterance starts, pauses, resumes, ends."""

    def __init__(self, policy: Endpointing | None = None) -> None:
        self.policy = policy or Endpointing()
        self.in_speech = False
        self.speech_run_ms = 0
        self.silence_ms = 0

    def push(self, probability: float) -> str | None:
        """'start', 'pause' (early_ms of silence), 'resume', 'end', or None."""
        policy = self.policy
        if not self.in_speech:
            self.speech_run_ms = (
                self.speech_run_ms + WINDOW_MS if probability >= policy.start_threshold else 0
            )
            if self.speech_run_ms >= policy.min_speech_ms:
                self.in_speech, self.silence_ms = True, 0
                return "start"
            return None
        if probability < policy.end_threshold:
            self.silence_ms += WINDOW_MS
            if self.silence_ms >= policy.endpoint_ms:
                self.in_speech, self.speech_run_ms = False, 0
                return "end"
            if self.silence_ms == policy.early_ms // WINDOW_MS * WINDOW_MS:
                return "pause"
            return None
        resumed = self.silence_ms >= policy.early_ms // WINDOW_MS * WINDOW_MS
        self.silence_ms = 0
        return "resume" if resumed else None

    def force_end(self) -> bool:
        """End the utterance now (the client said so); False if none was in progress."""
        was = self.in_speech
        self.in_speech, self.speech_run_ms, self.silence_ms = False, 0, 0
        return was
