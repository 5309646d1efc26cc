"""Eager ends of turn on one stream: the early final's transcript, told once the turn model
has found the turn likely over (domain/turns.py's EagerEnd), and taken back when the user
goes on speaking."""

from __future__ import annotations

import asyncio

import msgspec

from application.stream_events import EagerEndOfTurn, TurnResumed
from application.stream_finals import BYTES_PER_SECOND, Heard, shifted


class _Likely(msgspec.Struct):
    utterance: int
    early: asyncio.Task[Heard]
    start: int  # bytes
    end: int
    probability: float


class EagerEnds:
    """Rules:
    - An eager end is told with the piece of audio after its early final is out (the stream's
      events stay in order); an early final that failed or was dropped tells nothing.
    - The utterance ends before it was told: its final tells it first (StreamFinals).
    - Speech that goes on takes back an eager end that was told (TurnResumed); one not told
      yet is forgotten, so a client never sees a resumption of what it was not told.
    """

    def __init__(self) -> None:
        self._likely: _Likely | None = None
        self._told: int | None = None  # the utterance whose eager end stands

    def likely(
        self, utterance: int, early: asyncio.Task[Heard], start: int, end: int, p: float
    ) -> None:
        self._likely = _Likely(utterance, early, start, end, p)

    def due(self) -> list[EagerEndOfTurn]:
        """The eager end to tell now, if its early final is out."""
        likely = self._likely
        if likely is None or not likely.early.done():
            return []
        self._likely = None
        if likely.early.cancelled() or likely.early.exception() is not None:
            return []
        transcript, _ = likely.early.result()
        start = likely.start / BYTES_PER_SECOND
        self._told = likely.utterance
        span = round(start, 3), round(likely.end / BYTES_PER_SECOND, 3)
        heard = shifted(transcript, start)
        return [EagerEndOfTurn(likely.utterance, *span, heard, likely.probability)]

    def withdrawn(self, utterance: int) -> list[TurnResumed]:
        """Speech went on: TurnResumed if the eager end was told."""
        self._likely = None
        if self._told != utterance:
            return []
        self._told = None
        return [TurnResumed(utterance)]

    def ended(self, utterance: int) -> float | None:
        """The utterance is over: the probability of its eager end still to tell, if any."""
        likely, self._likely, self._told = self._likely, None, None
        return likely.probability if likely is not None and likely.utterance == utterance else None
