"""Append-only transcript deltas from drafts that may rewrite themselves.

Protocols that stream a transcript as text to append (OpenAI's Realtime API, Wyoming's
transcript-chunk) cannot take back words. A draft that agrees with what was sent adds its
new words; one that rewrites earlier words waits for a later draft, or the final, that agrees.
"""

from __future__ import annotations


class TranscriptDeltas:
    def __init__(self) -> None:
        self.sent = ""

    def delta(self, text: str) -> str:
        """What to append for this draft or final ("" when nothing can be added)."""
        if text.startswith(self.sent) and len(text) > len(self.sent):
            added, self.sent = text[len(self.sent) :], text
            return added
        return ""
