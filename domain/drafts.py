"""When a stream's next draft (a partial transcript) may start."""

from __future__ import annotations

BYTES_PER_MS = 32  # 16 kHz, 16-bit mono
AHEAD_MS = 300  # audio this far ahead of real time (and of two frames) gets no drafts
# Drafts start on windows this sure of speech: the last windows before a pause are less sure
# (median 0.52 against 0.78 just before, on recorded speech), and a draft started there holds
# the model when the final needs it. An overdue draft (twice `partial_ms`) starts anyway.
DRAFT_SURE = 0.8


class DraftPace:
    """Rules: a draft is due `partial_ms` of audio after the utterance started or the last
    draft did, on a window at least DRAFT_SURE of speech (or when twice overdue); one at a
    time; none for audio more than max(AHEAD_MS, two frames) ahead of real time. (Turns adds:
    while speech goes on, not in a pause.) Positions are bytes of the 16 kHz stream."""

    def __init__(self, partial_ms: int) -> None:
        self.partial_ms = partial_ms
        self.running = False
        self._last = 0  # where the utterance started or the last draft did
        self._sure = False  # the last window was DRAFT_SURE of speech
        self._first_audio_at: float | None = None
        self._frame_ms = 0.0  # the largest frame so far

    def heard(self, now: float, frame: int) -> None:
        """Audio came at `now` in a frame of `frame` bytes."""
        if self._first_audio_at is None:
            self._first_audio_at = now
        self._frame_ms = max(self._frame_ms, frame / BYTES_PER_MS)

    def window(self, probability: float) -> None:
        self._sure = probability >= DRAFT_SURE

    def restart(self, position: int) -> None:
        """An utterance starts at `position`: its first draft is due `partial_ms` later."""
        self._last = position

    def due(self, position: int, now: float) -> bool:
        since = position - self._last
        due = self.partial_ms * BYTES_PER_MS
        if self.running or since < due or not (self._sure or since >= 2 * due):
            return False
        return not self._ahead(position, now)

    def started(self, position: int) -> None:
        self.running, self._last = True, position

    def done(self) -> None:
        self.running = False

    def _ahead(self, position: int, now: float) -> bool:
        """Audio sent faster than it plays (a file, a burst): a draft of it would be stale
        before it is shown, and would hold the model the final needs next."""
        assert self._first_audio_at is not None
        played_ms = 1000 * (now - self._first_audio_at)
        # A client sending big frames in real time is up to a frame ahead: that is not a burst.
        return position / BYTES_PER_MS - played_ms > max(AHEAD_MS, 2 * self._frame_ms)
