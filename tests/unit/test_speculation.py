"""A speculative answer is kept only for the same words, and each one is recorded."""

from __future__ import annotations

from typing import Any

from application.speculation import Speculation


class FakeReply:
    def __init__(self, response_id: str) -> None:
        self.response_id = response_id
        self.begun = self.dropped = self.cancelled = False

    def begin(self) -> None:
        self.begun = True

    def drop(self) -> None:
        self.dropped = self.cancelled = True


class Recorder:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, bool]] = []

    def record(self, response_id: str, _: Any, *, used: bool) -> None:
        self.recorded.append((response_id, used))


def test_the_same_words_keep_it_other_words_or_a_resumed_turn_drop_it() -> None:
    recorder = Recorder()
    speculation = Speculation(recorder)  # type: ignore[arg-type]
    first, second, third = FakeReply("a"), FakeReply("b"), FakeReply("c")
    speculation.hold("What's the time?", first)  # type: ignore[arg-type]
    assert first.begun and speculation.pending
    kept: Any = speculation.take("what's the time")
    assert kept is first  # case and punctuation aside
    speculation.hold("Book a table", second)  # type: ignore[arg-type]
    assert speculation.take("Book a table for two") is None and second.dropped
    speculation.hold("Call mum", third)  # type: ignore[arg-type]
    speculation.drop()  # the user went on
    assert third.dropped and not speculation.pending
    assert speculation.take("Call mum") is None  # nothing held any more
    assert recorder.recorded == [("a", True), ("b", False), ("c", False)]


def test_a_turn_begins_at_most_three_answers_and_its_end_allows_more() -> None:
    speculation = Speculation(Recorder())  # type: ignore[arg-type]
    for name in "abc":
        assert speculation.allowed
        speculation.hold("Hi", FakeReply(name))  # type: ignore[arg-type]
    assert not speculation.allowed  # a speaker who keeps pausing: the end answers
    assert speculation.take("Hi there") is None
    assert speculation.allowed  # the next turn may begin again
