"""A listening session's events as Flux's `TurnInfo` messages: one turn per utterance, from
StartOfTurn through Updates (and eager ends) to its EndOfTurn."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from application import stream_events as ev
from domain.speech import Transcript
from domain.words import TimedWord, estimated_words, segment_words

Send = Callable[[dict[str, Any]], Awaitable[None]]
Window = tuple[float, float, str, list[TimedWord]]  # audio_window_start/end, transcript, words
TRIGGERS = {"turn": "model", "client": "manual", "stream_end": "manual"}  # else "timeout"


class TurnReport:
    """Update carries the latest draft (words without confidence: 0); eager ends and EndOfTurn
    the model's words and the turn model's confidence; TurnResumed repeats the eager end."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self._span = (0.0, 0.0)  # of the last utterance closed
        self._eager: Window | None = None

    async def emit(self, event: ev.StreamEvent) -> None:
        if isinstance(event, ev.SpeechStarted):
            at = event.audio_ms / 1000
            await self._turn("StartOfTurn", event.utterance, (at, at, "", []))
        elif isinstance(event, ev.Partial):
            start = event.start_ms / 1000
            end = start + event.audio_ms / 1000
            words = estimated_words(event.text, start, end, 0.0)
            await self._turn("Update", event.utterance, (start, end, event.text, words))
        elif isinstance(event, ev.EagerEndOfTurn):
            self._eager = _window(event.transcript, event.start, event.end)
            await self._turn("EagerEndOfTurn", event.utterance, self._eager, event.probability)
        elif isinstance(event, ev.TurnResumed) and self._eager is not None:
            await self._turn("TurnResumed", event.utterance, self._eager)
        elif isinstance(event, ev.SpeechStopped):
            self._span = (event.start_ms / 1000, event.end_ms / 1000)
        elif isinstance(event, ev.Final | ev.Failed):
            self._eager = None
            if isinstance(event, ev.Final):
                window = _window(event.result.transcript, event.start, event.end)
            else:
                window = (*self._span, "", [])
                why = f"a turn could not be transcribed: {event.message}"
                await self.send({"type": "Warning", "code": event.code.upper(), "description": why})
            confidence = (event.confidence if isinstance(event, ev.Final) else None) or 0.0
            trigger = TRIGGERS.get(event.reason, "timeout")
            await self._turn("EndOfTurn", event.utterance, window, confidence, trigger)

    async def _turn(
        self, event: str, turn: int, window: Window, confidence: float = 0.0, trigger: str = ""
    ) -> None:
        start, end, text, words = window
        message: dict[str, Any] = {
            "type": "TurnInfo",
            "event": event,
            "turn_index": turn,
            "audio_window_start": round(start, 3),
            "audio_window_end": round(end, 3),
            "transcript": text,
            "words": [
                {
                    "word": w.punctuated_word,
                    "confidence": w.confidence,
                    "start": w.start,
                    "end": w.end,
                }
                for w in words
            ],
            "end_of_turn_confidence": round(confidence, 4),
        }
        await self.send(message | ({"trigger": trigger} if trigger else {}))


def _window(transcript: Transcript, start: float, end: float) -> Window:
    return start, end, transcript.text, segment_words(transcript, start, end)
