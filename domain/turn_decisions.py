"""What the turn state machine (domain/turns.py) asks its driver to do.

Positions are bytes of the 16 kHz mono s16le stream, counted from its first byte; a span is
[start, end). Jobs and checks carry ids so that a cancel names the one it means.
"""

from __future__ import annotations

from typing import Literal

import msgspec

# Why an utterance ended: endpoint silence; the turn model judged the sentence finished; the
# client committed or finalized; the `max_utterance_ms` cut; the stream stopped mid-utterance.
EndReason = Literal["silence", "turn", "client", "length", "stream_end"]


class UtteranceStarted(msgspec.Struct, frozen=True):
    """Voice activity began utterance `utterance`; its audio starts at `start` (preroll in)."""

    utterance: int
    start: int


class StartDraft(msgspec.Struct, frozen=True):
    """Transcribe the utterance so far as a draft (a partial transcript)."""

    utterance: int
    start: int
    end: int


class CancelDraft(msgspec.Struct, frozen=True):
    """Drop the draft in flight: its utterance is gone."""


class StartFinal(msgspec.Struct, frozen=True):
    """Start the final transcription early, at a pause; it is used if the utterance ends
    before speech resumes."""

    job: int
    start: int
    end: int


class CancelFinal(msgspec.Struct, frozen=True):
    """Drop early final `job`: speech went on, or its cut left out sound."""

    job: int


class StartTurnCheck(msgspec.Struct, frozen=True):
    """Ask the turn model whether the sentence in [start, end) is finished."""

    check: int
    start: int
    end: int


class CancelTurnCheck(msgspec.Struct, frozen=True):
    check: int


class UtteranceEnded(msgspec.Struct, frozen=True):
    """The utterance is over: its final transcribes [start, end), using early final `early`
    when there is one (else a job of its own, after the finals before it). The next
    utterance may start at `closed_at` (past `end` when a client's cut came after a pause)."""

    utterance: int
    start: int
    end: int
    closed_at: int
    reason: EndReason
    early: int | None
    last_speech_at: float  # monotonic time of the last window with speech
    confidence: float | None = None  # the turn model's verdict on the pause that ended it


class EagerEnd(msgspec.Struct, frozen=True):
    """The turn model judged the sentence likely finished (at least `eager_threshold`) while
    early final `early` covers the pause: a likely end of turn, which the utterance's end
    confirms or an EagerEndWithdrawn takes back."""

    utterance: int
    early: int
    start: int  # the early final's span
    end: int
    probability: float


class EagerEndWithdrawn(msgspec.Struct, frozen=True):
    """Speech went on after an EagerEnd of `utterance`: the turn resumed."""

    utterance: int


class ReasonChanged(msgspec.Struct, frozen=True):
    """The final still to come for `utterance` now says `reason`."""

    utterance: int
    reason: EndReason


class Forget(msgspec.Struct, frozen=True):
    """No start or final will reach back before `before`: the audio there can go."""

    before: int


Decision = (
    UtteranceStarted
    | StartDraft
    | CancelDraft
    | StartFinal
    | CancelFinal
    | StartTurnCheck
    | CancelTurnCheck
    | UtteranceEnded
    | EagerEnd
    | EagerEndWithdrawn
    | ReasonChanged
    | Forget
)
