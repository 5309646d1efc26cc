"""Where text is cut for synthesis: at sentence ends, long sentences at clauses.

The first audio can only start once its piece is synthesized, so short pieces mean early
audio; cutting inside a clause would break the voice's intonation, so we only do it past
MAX_SPOKEN_CHARS, the most text one model inference is ever given: a clause that long is cut
between words, and an unbroken "word" that long every MAX_SPOKEN_CHARS characters.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?…])([\"')\]]*)\s+")  # closers belong to the sentence
_CLAUSE_END = re.compile(r"(?<=[,;:—–])\s+")

MAX_PIECE_CHARS = 120
# A voice model's memory grows with its input: 4,900 characters in one Piper run took 2.3 GB.
MAX_SPOKEN_CHARS = 200


def complete_sentences(buffer: str) -> tuple[list[str], str]:
    """Split off every finished sentence; the unfinished rest stays in the buffer."""
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(buffer):
        pieces.append(buffer[start : match.end(1)].strip())
        start = match.end()
    return [p for p in pieces if p], buffer[start:]


def split_long(
    sentence: str, max_chars: int = MAX_PIECE_CHARS, hard_max: int = MAX_SPOKEN_CHARS
) -> list[str]:
    """Cut a sentence longer than `max_chars` at clause boundaries (commas, semicolons…).

    No piece is ever longer than `hard_max`: a clause past it is cut between words, a word
    past it every `hard_max` characters.
    """
    max_chars = min(max_chars, hard_max)
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    current = ""
    for clause in _CLAUSE_END.split(sentence):
        if current and len(current) + 1 + len(clause) > max_chars:
            pieces.append(current)
            current = clause
        else:
            current = f"{current} {clause}".strip()
    if current:
        pieces.append(current)
    return [part for piece in pieces for part in _bounded(piece, hard_max)]


def _bounded(piece: str, hard_max: int) -> list[str]:
    """`piece` as is when short enough, else cut between words, then inside words."""
    if len(piece) <= hard_max:
        return [piece]
    parts: list[str] = []
    current = ""
    for word in piece.split():
        while len(word) > hard_max:  # no space to cut at: cut the word itself
            if current:
                parts.append(current)
                current = ""
            parts.append(word[:hard_max])
            word = word[hard_max:]
        if current and len(current) + 1 + len(word) > hard_max:
            parts.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    if current:
        parts.append(current)
    return parts


def pieces_of(
    text: str,
    max_chars: int = MAX_PIECE_CHARS,
    first_max: int = 60,
    hard_max: int = MAX_SPOKEN_CHARS,
) -> list[str]:
    """All pieces of a whole text, in order; the first is kept short for a fast first chunk."""
    return [
        piece
        for pieces in sentence_pieces(text, max_chars, first_max, hard_max)
        for piece in pieces
    ]


def sentence_pieces(
    text: str,
    max_chars: int = MAX_PIECE_CHARS,
    first_max: int = 60,
    hard_max: int = MAX_SPOKEN_CHARS,
) -> list[list[str]]:
    """The pieces of a whole text, sentence by sentence (a pause goes between sentences, not
    inside one)."""
    sentences, rest = complete_sentences(text + " ")
    if rest.strip():
        sentences.append(rest.strip())
    grouped: list[list[str]] = []
    for sentence in sentences:
        if not grouped:
            grouped.append(first_pieces(sentence, first_max, hard_max))
        else:
            grouped.append(split_long(sentence, max_chars, hard_max))
    return grouped


def first_pieces(sentence: str, first_max: int = 60, hard_max: int = MAX_SPOKEN_CHARS) -> list[str]:
    """The opening piece must be short; with no clause to cut at, cut at a word boundary."""
    pieces = split_long(sentence, first_max, hard_max)
    head = pieces[0]
    if len(head) > first_max and " " in head[:first_max]:
        cut = head.rindex(" ", 0, first_max)
        pieces[0:1] = [head[:cut], head[cut + 1 :]]
    return pieces
