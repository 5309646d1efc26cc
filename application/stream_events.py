"""What a listening stream tells its transport, in order, for every protocol alike.

Per utterance: SpeechStarted (voice activity only, not in manual mode), Partials, then
SpeechStopped, then its Final or a Failed; finals come in utterance order. With an eager
threshold, an EagerEndOfTurn may come before the Final (at most one per pause), and a
TurnResumed after it when the user goes on (then Partials, and maybe another eager end).
Times are ms (or seconds, for a Final) from the start of the stream.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec

from application.transcribe_audio import TranscriptionResult
from domain.speech import Transcript
from domain.turn_decisions import EndReason

__all__ = [
    "EagerEndOfTurn",
    "Emit",
    "EndReason",
    "Failed",
    "Final",
    "Partial",
    "SpeechStarted",
    "SpeechStopped",
    "StreamEvent",
    "TurnResumed",
]


class SpeechStarted(msgspec.Struct, frozen=True):
    """Voice activity began an utterance (at once: a speaking answer may stop for it)."""

    utterance: int
    audio_ms: int  # from the start of the stream, preroll included


class SpeechStopped(msgspec.Struct, frozen=True):
    """The utterance is closed; its Final or a Failed follows. [start_ms, end_ms) is its span
    (end_ms: where the next one may start; in manual mode the client's cut)."""

    utterance: int
    reason: EndReason
    start_ms: int
    end_ms: int


class Partial(msgspec.Struct, frozen=True):
    utterance: int
    text: str
    audio_ms: float  # of this utterance, so far
    start_ms: int  # where this utterance starts in the stream


class Final(msgspec.Struct, frozen=True):
    utterance: int
    start: float  # seconds from the start of the stream
    end: float
    result: TranscriptionResult
    end_of_speech_lag_ms: float  # from the last speech window to this final, in wall time
    reason: EndReason
    confidence: float | None = None  # the turn model's verdict on the pause that ended it


class EagerEndOfTurn(msgspec.Struct, frozen=True):
    """The turn is likely over: the turn model judged it so (at least the eager threshold)
    and the early final's transcript is out. The utterance's Final confirms it (usually
    with the same text); a TurnResumed takes it back. Sent only with an eager threshold."""

    utterance: int
    start: float  # seconds from the start of the stream
    end: float
    transcript: Transcript  # the early final's, in stream time
    probability: float  # the turn model's


class TurnResumed(msgspec.Struct, frozen=True):
    """The user went on speaking after this utterance's EagerEndOfTurn."""

    utterance: int


class Failed(msgspec.Struct, frozen=True):
    """An utterance whose final transcription failed (busy model, model error)."""

    utterance: int
    code: str
    message: str
    reason: EndReason


StreamEvent = (
    Partial | Final | Failed | SpeechStarted | SpeechStopped | EagerEndOfTurn | TurnResumed
)
Emit = Callable[[StreamEvent], Awaitable[None]]
