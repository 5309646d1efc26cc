"""An answer begun at a likely end of the user's turn, before the turn is sure to be over:
kept when the turn ends with the same words, dropped when the user goes on or says other."""

from __future__ import annotations

import re

from application.replying import Reply, Responding
from domain.events import AnswerSpeculated


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


class Speculation:
    """At most one speculative answer at a time; each one is recorded as used or dropped."""

    def __init__(self, responding: Responding) -> None:
        self.responding = responding
        self._held: tuple[str, Reply] | None = None
        self.dropped: list[str] = []  # the words of each dropped, until the client is told

    @property
    def pending(self) -> bool:
        return self._held is not None

    def hold(self, text: str, reply: Reply) -> None:
        self.drop()
        reply.begin()
        self._held = (text, reply)

    def take(self, text: str) -> Reply | None:
        """The answer begun for `text`, if the turn ended with its words; else dropped."""
        held, self._held = self._held, None
        if held is None:
            return None
        heard, reply = held
        if _words(heard) != _words(text) or reply.cancelled:
            self._end(heard, reply, used=False)
            return None
        self._end(heard, reply, used=True)
        return reply

    def drop(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._end(*held, used=False)

    def _end(self, said: str, reply: Reply, *, used: bool) -> None:
        if not used:
            reply.drop()
            self.dropped.append(said)
        self.responding.record(reply.response_id, AnswerSpeculated, used=used)
