"""The turn model's part in one stream's turns (domain/turns.py): the check in flight, its
verdict (acted on at the next window), the confidence of the pause going on, and whether an
eager end stands."""

from __future__ import annotations

from collections.abc import Iterator

from domain.turn_decisions import (
    CancelTurnCheck,
    Decision,
    EagerEnd,
    EagerEndWithdrawn,
    StartTurnCheck,
)


class Verdicts:
    def __init__(self, ids: Iterator[int]) -> None:
        self._ids = ids  # shared with the early finals: a cancel names the one it means
        self.check: int | None = None
        self._answer: tuple[int, float | None] | None = None
        self.eager = False
        self.confidence: float | None = None

    def start(self, start: int, end: int) -> list[Decision]:
        """Ask about [start, end); a check still in flight is replaced."""
        out = self.cancel()
        self.check = next(self._ids)
        return [*out, StartTurnCheck(self.check, start, end)]

    def judged(self, check: int, probability: float | None) -> None:
        self._answer = (check, probability)

    def take(self) -> float | None:
        """The verdict of the check in flight, once it came (the check is then over); None
        if none came, the check was cancelled or replaced, or the model failed."""
        if self._answer is None:
            return None
        (check, probability), self._answer = self._answer, None
        if check != self.check:
            return None
        self.check, self.confidence = None, probability
        return probability

    def likely(self, eager: EagerEnd, threshold: float | None) -> list[Decision]:
        """A verdict while the early final covers the pause: the eager end stands if the
        verdict is at least `threshold`."""
        if threshold is None or eager.probability < threshold:
            return []
        self.eager = True
        return [eager]

    def cancel(self) -> list[Decision]:
        check, self.check = self.check, None
        return [CancelTurnCheck(check)] if check is not None else []

    def withdraw(self, utterance: int) -> list[Decision]:
        """Speech went on: an eager end that stood is taken back."""
        eager = self.eager
        self.ended()
        return [EagerEndWithdrawn(utterance)] if eager else []

    def ended(self) -> float | None:
        """The utterance is over (or dropped): the confidence of its last pause."""
        confidence, self.eager, self.confidence = self.confidence, False, None
        return confidence
