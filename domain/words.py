"""Words of a transcript in time: the model's own timings, or estimated from a segment's span
when the model timed only the whole."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import msgspec

from domain.speech import Segment, Transcript, Word

_EDGE_PUNCTUATION = re.compile(r"^[^\w']+|[^\w']+$")


class TimedWord(msgspec.Struct, frozen=True):
    """A word with its time: `word` plain and lower case, `punctuated_word` as said."""

    word: str
    start: float
    end: float
    confidence: float
    punctuated_word: str


def plain(text: str) -> str:
    """Deepgram's unpunctuated form: lower case, no punctuation around words."""
    return " ".join(w for w in (_EDGE_PUNCTUATION.sub("", t).lower() for t in text.split()) if w)


def confidence(probability: float) -> float:
    return round(min(max(probability, 0.0), 1.0), 4)


def segment_confidence(segment: Segment) -> float:
    return confidence(math.exp(segment.avg_logprob))


def timed_words(words: Sequence[Word]) -> list[TimedWord]:
    """The model's own word timings; pieces that are only punctuation are not words."""
    out = []
    for word in words:
        bare = plain(word.word)
        if bare:
            out.append(
                TimedWord(
                    bare, word.start, word.end, confidence(word.probability), word.word.strip()
                )
            )
    return out


def estimated_words(text: str, start: float, end: float, probability: float) -> list[TimedWord]:
    """Words spread over [start, end] by their length in characters: for transcripts whose
    model call timed only the whole (a stream's utterances, its drafts)."""
    tokens = [t for t in text.split() if plain(t)]
    total = sum(len(t) + 1 for t in tokens)
    out: list[TimedWord] = []
    at = 0
    span = max(end - start, 0.0)
    for token in tokens:
        begin = start + span * at / total
        at += len(token) + 1
        finish = start + span * at / total
        out.append(
            TimedWord(
                plain(token), round(begin, 3), round(finish, 3), confidence(probability), token
            )
        )
    return out


def segment_words(transcript: Transcript, start: float, end: float) -> list[TimedWord]:
    if transcript.words:
        return timed_words(transcript.words)
    words: list[TimedWord] = []
    for segment in transcript.segments:  # Whisper's segment times can run past the audio
        low = max(segment.start, start)
        high = max(min(segment.end, end), low)
        words += estimated_words(segment.text, low, high, segment_confidence(segment))
    if not words and transcript.text:
        words = estimated_words(transcript.text, start, end, 0.0)
    return words


def mean_confidence(words: Sequence[TimedWord], fallback: float = 0.0) -> float:
    if not words:
        return fallback
    return confidence(sum(w.confidence for w in words) / len(words))


def spoken_groups(words: Sequence[TimedWord], split: float) -> list[list[TimedWord]]:
    """Words grouped where the silence between two is at least `split` seconds."""
    groups: list[list[TimedWord]] = []
    for word in words:
        if groups and word.start - groups[-1][-1].end < split:
            groups[-1].append(word)
        else:
            groups.append([word])
    return groups
