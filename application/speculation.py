"""An answer begun at a likely end of the user's turn, before the turn is sure to be over:
kept when the turn ends with the same words, dropped when the user goes on or says other."""

from __future__ import annotations

import re

from application.replying import Reply, Responding
from domain.events import AnswerSpeculated


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


MAX_PER_TURN = 3  # a speaker who keeps pausing does not start the model without end (free)


class Speculation:
    """At most one speculative answer at a time, and MAX_PER_TURN in one user turn; each one
    is recorded as used or dropped."""

    def __init__(self, responding: Responding) -> None:
        self.responding = responding
        self._begun = 0  # in the user turn going on
        self._held: tuple[str, Reply] | None = None
        self.dropped: list[str] = []  # the words of each dropped, until the client is told

    @property
    def pending(self) -> bool:
        return self._held is not None

    @property
    def allowed(self) -> bool:
        return self._begun < MAX_PER_TURN

    def hold(self, text: str, reply: Reply) -> None:
        self.drop()
        reply.begin()
        self._held = (text, reply)
        self._begun += 1

    def take(self, text: str) -> Reply | None:
        """The turn ended: the answer begun for `text`, if it has its words; else dropped."""
        held, self._held, self._begun = self._held, None, 0
        if held is None:
            return None
        heard, reply = held
        if _words(heard) != _words(text) or reply.cancelled:
            self._end(heard, reply, used=False)
            return None
        self._end(heard, reply, used=True)
        return reply

    def turn_over(self) -> None:
        """The user's turn ended without an answer to it: nothing begun is used."""
        self.take("")

    def drop(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._end(*held, used=False)

    def _end(self, said: str, reply: Reply, *, used: bool) -> None:
        if not used:
            reply.drop()
            self.dropped.append(said)
        self.responding.record(reply.response_id, AnswerSpeculated, used=used)
