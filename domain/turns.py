"""Turns as decisions: one speaker's stream, from speech probabilities to what to transcribe.

A pure state machine. Its inputs are the 32 ms windows' speech probabilities (with the
monotonic time they arrived, passed in), the client's commit, finalize and clear, the end of
the stream, and the completions of the jobs it asked for; its outputs are decisions
(domain/turn_decisions.py) that a driver carries out. The same audio makes the same cuts
however fast it arrives (drafts wait for real time; the length cut is checked once a piece).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import count

import msgspec

from domain.drafts import BYTES_PER_MS, DraftPace
from domain.turn_decisions import (
    CancelDraft,
    CancelFinal,
    Decision,
    EagerEnd,
    EndReason,
    Forget,
    ReasonChanged,
    StartDraft,
    StartFinal,
    UtteranceEnded,
    UtteranceStarted,
)
from domain.turn_verdicts import Verdicts
from domain.utterances import WINDOW_MS, Endpointing, UtteranceDetector

WINDOW_BYTES = WINDOW_MS * BYTES_PER_MS
TURN_MS = 8_000  # the turn model hears the last 8 s of an utterance


class _Early(msgspec.Struct):
    job: int
    end: int


class _Unfinished(msgspec.Struct):
    """An ended utterance whose final is still to come (its audio is still needed)."""

    utterance: int
    start: int
    reason: EndReason


class Turns:
    """Where utterances start and end, and which model jobs serve them.

    Rules:
    - An utterance starts after `min_speech_ms` of speech, reaching back `preroll_ms` (never
      into the utterance before), and ends after `endpoint_ms` of silence, at the client's
      commit, at `max_utterance_ms` (checked after each piece of audio), or when the stream
      ends.
    - Its final starts early at a pause (`early_ms` of silence, domain/utterances.py) and is
      dropped if speech resumes; at the end it stands if the pause stayed quiet, else the
      final transcribes up to the end.
    - `judge` (a turn model, `policy.semantic`): after `turn_ms` of silence the model judges
      the last 8 s; a finished sentence ends at the next window, an unfinished one waits for
      `incomplete_ms` of silence. A verdict after speech resumed is dropped.
    - Eager ends (`eager_threshold` set): a verdict at least that sure while the early final
      covers the pause is an EagerEnd, before the end or the wait; speech that goes on
      after it withdraws it (EagerEndWithdrawn), and the next pause is judged again.
    - Drafts while speech goes on, not in a pause, paced by domain/drafts.py (every
      `partial_ms`, on sure windows, one at a time, not ahead of real time).
    - `manual`: voice activity does not cut; an utterance is all audio up to the client's
      commit (from the last commit or clear); its final still starts early at a pause and
      stands if no speech follows before the commit.
    - Audio is forgotten when no start or final can reach back to it.
    """

    def __init__(
        self,
        policy: Endpointing | None = None,
        *,
        partial_ms: int = 500,
        manual: bool = False,
        judge: bool = False,
    ) -> None:
        self.detector = UtteranceDetector(policy)
        self.policy = self.detector.policy
        self.drafts = DraftPace(partial_ms)
        self.manual = manual
        self.judge = judge and self.policy.semantic and not manual
        self.utterance = 0  # the index of the utterance in progress, or of the next one
        self.position = 0  # bytes of whole windows heard
        self._start: int | None = None  # where the utterance in progress starts
        self._last_end = 0  # where the last one was closed
        self._forgotten = 0
        self._ids = count()
        self._early: _Early | None = None
        self.verdicts = Verdicts(self._ids)
        self._unfinished: list[_Unfinished] = []
        self._last_speech_at = 0.0

    @property
    def in_progress(self) -> bool:
        return self._start is not None

    def heard(self, probabilities: Sequence[float], now: float, frame: int) -> list[Decision]:
        """A piece of audio (not empty) came in a frame of `frame` bytes at `now`, with the
        probabilities of the windows it completed."""
        out: list[Decision] = []
        self.drafts.heard(now, frame)
        if self.manual and self._start is None:
            self._start = max(self._forgotten, self._last_end)
            self.drafts.restart(self.position)
        for probability in probabilities:
            self._window(probability, now, out)
        longest = self.policy.max_utterance_ms * BYTES_PER_MS
        if self._start is not None and self.position - self._start >= longest:
            out += self.end_utterance("length")  # never-ending speech or noise: cut, go on
        if self._start is None:
            self._forget(out)
        elif self._speaking() and self.drafts.due(self.position, now):
            self.drafts.started(self.position)
            out.append(StartDraft(self.utterance, self._start, self.position))
        return out

    def end_utterance(self, reason: EndReason) -> list[Decision]:
        """End the utterance in progress now (nothing if none is)."""
        self.detector.force_end()
        return self._end(reason) if self._start is not None else []

    def finalize(self) -> list[Decision]:
        """The client's finalize: ends the utterance in progress; with none, the last final
        still to come says the client ended it; nothing if there is neither."""
        ended = self.end_utterance("client")
        if ended or not self._unfinished:
            return ended
        self._unfinished[-1].reason = "client"
        return [ReasonChanged(self._unfinished[-1].utterance, "client")]

    def clear(self) -> list[Decision]:
        """Drop the utterance in progress: no final for it."""
        self.detector.force_end()
        out: list[Decision] = [CancelDraft()] if self.drafts.running else []
        out += self._cancel_early() + self.verdicts.cancel()
        self._start, self._last_end = None, self.position
        self.verdicts.ended()
        return out

    def retune(self, policy: Endpointing) -> None:
        """New thresholds and waits (a client's mid-stream settings), from the next window."""
        self.policy = policy
        self.detector.retune(policy)

    def draft_done(self) -> None:
        self.drafts.done()

    def judged(self, check: int, probability: float | None) -> None:
        """The turn model's answer (None: it failed, and the silence endpoint decides)."""
        self.verdicts.judged(check, probability)

    def transcribed(self, utterance: int) -> EndReason:
        """The final of `utterance` is out (or failed): its audio may go. Why it ended."""
        done = next(u for u in self._unfinished if u.utterance == utterance)
        self._unfinished.remove(done)
        return done.reason

    def _window(self, probability: float, now: float, out: list[Decision]) -> None:
        self.position += WINDOW_BYTES
        if probability >= self.policy.end_threshold:
            self._last_speech_at = now
        self.drafts.window(probability)
        change = self.detector.push(probability)
        if self.manual:
            if change in ("pause", "resume", "start"):
                out += self._cancel_early()  # speech went on after the pause
            if change == "pause" and self._start is not None:
                self._cut_early(out)
            return
        if change == "start":
            reach = (self.policy.min_speech_ms + self.policy.preroll_ms) * BYTES_PER_MS
            # Never reach back into the last utterance (a cut mid-speech): no word twice.
            self._start = max(self._forgotten, self._last_end, self.position - reach)
            self.drafts.restart(self.position)
            out.append(UtteranceStarted(self.utterance, self._start))
        elif change == "pause" and self._start is not None:
            self._cut_early(out)
        elif change == "resume":
            out += self._cancel_early() + self.verdicts.cancel()
            out += self.verdicts.withdraw(self.utterance)
        elif change == "end" and self._start is not None:
            out += self._end("silence")
        if self.detector.turn_due and self.judge and self._start is not None:
            start = max(self._start, self.position - TURN_MS * BYTES_PER_MS)
            out += self.verdicts.start(start, self.position)
        self._act_on_verdict(out)

    def _act_on_verdict(self, out: list[Decision]) -> None:
        """A verdict is acted on at a window, like any other cut."""
        probability = self.verdicts.take()
        if probability is None or self._start is None or not self.detector.in_speech:
            return
        if (early := self._early) is not None:  # an eager end, if sure enough
            eager = EagerEnd(self.utterance, early.job, self._start, early.end, probability)
            out += self.verdicts.likely(eager, self.policy.eager_threshold)
        if probability >= self.policy.complete_threshold:
            self.detector.force_end()
            out += self._end("turn")
        else:
            self.detector.wait_longer()

    def _cut_early(self, out: list[Decision]) -> None:
        """Start the final on the audio so far; one cut before it (that left out sound) goes."""
        assert self._start is not None
        out += self._cancel_early()
        self._early = _Early(next(self._ids), self.position)
        out.append(StartFinal(self._early.job, self._start, self.position))

    def _end(self, reason: EndReason) -> list[Decision]:
        start = self._start
        assert start is not None
        early, self._early = self._early, None
        out: list[Decision] = []
        if early is not None and not self.detector.cut_is_quiet():
            out.append(CancelFinal(early.job))  # it left out sound: cut here instead
            early = None
        out += self.verdicts.cancel()  # the utterance ended before the verdict
        # The early transcription already covers the speech and the quiet after it.
        end = max(early.end if early is not None else self.position, start)
        # Manual: the next utterance starts at the client's cut, past the silence left out.
        closed_at = self.position if self.manual else end
        out.append(
            UtteranceEnded(
                self.utterance,
                start,
                end,
                closed_at,
                reason,
                early.job if early is not None else None,
                self._last_speech_at,
                self.verdicts.ended(),
            )
        )
        self._unfinished.append(_Unfinished(self.utterance, start, reason))
        self._last_end, self._start = closed_at, None
        self.utterance += 1
        return out

    def _speaking(self) -> bool:
        """Speech goes on: drafts now, not in a pause (nor while an early final runs)."""
        return not self.detector.silence_ms and self._early is None

    def _cancel_early(self) -> list[Decision]:
        early, self._early = self._early, None
        return [CancelFinal(early.job)] if early is not None else []

    def _forget(self, out: list[Decision]) -> None:
        """Keep what a start reaches back to (the speech run and the preroll) and every
        unfinished utterance."""
        keep = (self.policy.min_speech_ms + self.policy.preroll_ms) * BYTES_PER_MS
        before = min([self.position - keep, *(u.start for u in self._unfinished)])
        if before > self._forgotten:
            self._forgotten = before
            out.append(Forget(before))
