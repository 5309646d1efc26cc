"""How a conversation takes turns: what ends the user's turn and what follows it."""

from __future__ import annotations

from typing import Literal

import msgspec

from domain.errors import InvalidValue
from domain.utterances import Endpointing

Eagerness = Literal["low", "medium", "high", "auto"]
# Voice activity alone: the silence that ends a turn at each eagerness.
EAGERNESS_SILENCE_MS = {"low": 1000, "medium": 500, "auto": 500, "high": 300}
# With the turn model: how sure it must be that a sentence is finished to end the turn at the
# pause, and how long an unfinished one may wait at most (OpenAI's documented 8 s, 4 s and
# 2 s; auto is medium).
EAGERNESS_TURN = {
    "low": (0.7, 8000),
    "medium": (0.5, 4000),
    "auto": (0.5, 4000),
    "high": (0.3, 2000),
}
EAGER_MARGIN = 0.2  # a likely end of turn: this much less sure than an end


class TurnDetection(msgspec.Struct, frozen=True):
    """`server_vad`: the turn ends after `silence_duration_ms` of silence. `semantic_vad`: the
    turn model judges each pause (per `eagerness`). Either may start an answer at the end of
    a turn (`create_response`) and stop one when the user speaks (`interrupt_response`)."""

    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True
    eagerness: Eagerness | None = None

    def semantic(self, eagerness: Eagerness) -> TurnDetection:
        """This detection's flags, with the turn model judging at `eagerness`."""
        return TurnDetection(
            "semantic_vad",
            silence_duration_ms=EAGERNESS_SILENCE_MS[eagerness],
            create_response=self.create_response,
            interrupt_response=self.interrupt_response,
            eagerness=eagerness,
        )

    def _eager_threshold(self, complete: float) -> float | None:
        """With the turn model, a likely end may begin an answer (unspoken until the end)."""
        return max(0.1, complete - EAGER_MARGIN) if self.type == "semantic_vad" else None

    def endpointing(self) -> Endpointing:
        complete, incomplete = EAGERNESS_TURN[self.eagerness or "auto"]
        return Endpointing(
            start_threshold=self.threshold,
            end_threshold=max(0.05, self.threshold - 0.15),
            endpoint_ms=self.silence_duration_ms,
            preroll_ms=self.prefix_padding_ms,
            semantic=self.type == "semantic_vad",
            complete_threshold=complete,
            incomplete_ms=incomplete,
            eager_threshold=self._eager_threshold(complete),
        )


FLUX_RANGES = {
    "eot_threshold": (0.5, 1.0),
    "eager_eot_threshold": (0.3, 0.9),
    "eot_timeout_ms": (500, 60_000),
}


class TurnThresholds(msgspec.Struct, frozen=True):
    """Turn settings as Deepgram Flux takes them: the turn model's confidence that ends a turn
    (1.0: never the model), the confidence for an eager end (None: none), and the longest
    silence after speech before the turn ends anyway."""

    eot_threshold: float = 0.7
    eager_eot_threshold: float | None = None
    eot_timeout_ms: int = 5000

    def updated(self, **given: float | None) -> TurnThresholds:
        """These thresholds with the values given (None: unchanged), checked."""
        changes = {name: value for name, value in given.items() if value is not None}
        timeout = changes.get("eot_timeout_ms")
        if timeout is not None and timeout != int(timeout):
            raise InvalidValue("eot_timeout_ms must be whole milliseconds", "eot_timeout_ms")
        for name, value in changes.items():
            low, high = FLUX_RANGES[name]
            if not low <= value <= high:  # also NaN
                raise InvalidValue(f"{name} must be from {low:g} to {high:g}", name)
        if timeout is not None:
            changes["eot_timeout_ms"] = int(timeout)
        new = msgspec.structs.replace(self, **changes)
        if (new.eager_eot_threshold or 0.0) > new.eot_threshold:
            raise InvalidValue(
                "eager_eot_threshold must not be above eot_threshold", "eager_eot_threshold"
            )
        return new

    def endpointing(self, base: Endpointing, judged: bool) -> Endpointing:
        """The turn model ends a turn at `eot_threshold`; one it does not judge finished waits
        out the timeout (with no turn model, the silence endpoint if that is shorter)."""
        timeout = self.eot_timeout_ms
        return msgspec.structs.replace(
            base,
            semantic=True,
            complete_threshold=self.eot_threshold,
            eager_threshold=self.eager_eot_threshold,
            endpoint_ms=timeout if judged else min(timeout, base.endpoint_ms),
            incomplete_ms=timeout,
        )
