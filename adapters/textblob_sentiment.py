"""SentimentAnalyzer adapter: TextBlob's pattern analyzer, offline.

Only parts of TextBlob that ship their data in the wheel are used (the pattern
sentiment lexicon and PatternTagger); ``TextBlob.tags``/``noun_phrases`` need
NLTK corpora that a self-hosted box may not have.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter

from textblob.en.sentiments import PatternAnalyzer
from textblob.en.taggers import PatternTagger

from adapters.emotion_lexicon import EMOTION_WORDS, NEGATIONS, STOPWORDS
from domain.speech import Sentiment

_NEUTRAL = Sentiment(
    polarity=0.0, subjectivity=0.0, label="neutral", emotion="neutral", keywords=()
)
# Without any emotion word, only clearly charged text gets an emotion.
_STRONG_POLARITY = 0.3
_EMOTION_OF = {word: emo for emo, words in EMOTION_WORDS.items() for word in words}
# Breaks ties between emotions in the direction of the overall polarity.
_VALENCE = {"joy": 1, "surprise": 0, "sadness": -1, "anger": -1, "fear": -1}
# Crude lemmatising without WordNet: (suffix, replacement), longest first.
_SUFFIXES = (
    ("iness", "y"), ("iest", "y"), ("ment", ""), ("ness", ""), ("ily", "y"),
    ("ied", "y"), ("ies", "y"), ("ier", "y"), ("ing", ""), ("est", ""),
    ("ed", ""), ("er", ""), ("es", ""), ("ly", ""), ("s", ""),
)  # fmt: skip
# Words keep inner apostrophes ("isn't" stays one token); punctuation ends a negation.
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*|[.!?;,:]")
_NEGATION_WINDOW = 3
# A keyword has at least one letter and no symbols (drops emoji and stray punctuation).
_KEYWORD = re.compile(r"(?=.*[^\W\d_])[\w.'-]+")


def _emotion_of(token: str) -> str | None:
    """The emotion of a lower-cased token, trying a few suffix-stripped base forms."""
    if token in _EMOTION_OF:
        return _EMOTION_OF[token]
    for suffix, replacement in _SUFFIXES:
        if not token.endswith(suffix) or len(token) - len(suffix) < 3:
            continue
        stem = token[: -len(suffix)] + replacement
        candidates = [stem]
        if suffix[0] in "aeiou" and not replacement:
            candidates.append(stem + "e")  # scared -> scare
            if len(stem) > 3 and stem[-1] == stem[-2]:
                candidates.append(stem[:-1])  # sobbing -> sob
        for candidate in candidates:
            if candidate in _EMOTION_OF:
                return _EMOTION_OF[candidate]
    return None


class TextBlobSentimentAnalyzer:
    """Polarity, subjectivity, a coarse label and emotion, and top keywords."""

    def __init__(
        self,
        *,
        neutral_threshold: float = 0.1,
        max_keywords: int = 5,
        include_proper_nouns: bool = True,
        inline_max_chars: int = 200,
    ) -> None:
        self._neutral_threshold = neutral_threshold
        self._max_keywords = max_keywords
        self._include_proper_nouns = include_proper_nouns
        self._inline_max_chars = inline_max_chars
        self._analyzer = PatternAnalyzer()
        self._tagger = PatternTagger()
        # Both lexicons load lazily on first use: pay that here, not on the first
        # request, and never concurrently from two worker threads.
        self._analyse_sync("Warm up the tagger and the sentiment lexicon, please.")

    async def analyse(self, text: str) -> Sentiment:
        # A thread hop costs more than analysing a short sentence inline.
        if len(text) <= self._inline_max_chars:
            return self._analyse_sync(text)
        return await asyncio.to_thread(self._analyse_sync, text)

    def _analyse_sync(self, text: str) -> Sentiment:
        # Curly apostrophes (phones, editors) would split "don’t" differently.
        text = text.replace("\u2019", "'").strip()
        if not text:
            return _NEUTRAL
        scores = self._analyzer.analyze(text)
        polarity = round(float(scores.polarity), 4)
        subjectivity = round(float(scores.subjectivity), 4)
        return Sentiment(
            polarity=polarity,
            subjectivity=subjectivity,
            label=self._label(polarity),
            emotion=self._emotion(text.lower(), polarity),
            keywords=self._keywords(text),
        )

    def _label(self, polarity: float) -> str:
        if polarity > self._neutral_threshold:
            return "positive"
        if polarity < -self._neutral_threshold:
            return "negative"
        return "neutral"

    def _emotion(self, lowered: str, polarity: float) -> str:
        counts: Counter[str] = Counter()
        first_seen: dict[str, int] = {}
        since_negation = _NEGATION_WINDOW + 1
        for index, token in enumerate(_TOKEN.findall(lowered)):
            if not token[0].isalpha():
                # A clause boundary ends the reach of a "not".
                since_negation = _NEGATION_WINDOW + 1
                continue
            if token in NEGATIONS or token.endswith("n't"):
                since_negation = 0
                continue
            since_negation += 1
            emotion = _emotion_of(token)
            if emotion is None or since_negation <= _NEGATION_WINDOW:
                continue  # "not happy" is no evidence of joy; polarity still sees it
            counts[emotion] += 1
            first_seen.setdefault(emotion, index)
        if not counts:
            if polarity > _STRONG_POLARITY:
                return "joy"
            if polarity < -_STRONG_POLARITY:
                return "sadness"
            return "neutral"
        direction = (polarity > 0) - (polarity < 0)
        return max(counts, key=lambda e: (counts[e], _VALENCE[e] * direction, -first_seen[e]))

    def _keywords(self, text: str) -> tuple[str, ...]:
        tagged: list[tuple[str, str]] = self._tagger.tag(text)
        counts: Counter[str] = Counter()
        for token, tag in tagged:
            if not tag.startswith(("NN", "JJ")):
                continue
            if tag.startswith("NNP") and not self._include_proper_nouns:
                continue
            word = token.lower().strip(".'-")
            if len(word) < 2 or word in STOPWORDS or not _KEYWORD.fullmatch(word):
                continue
            counts[word] += 1
        # Counter keeps insertion order and sorted() is stable, so equal counts
        # stay in order of first appearance.
        ranked = sorted(counts, key=lambda word: -counts[word])
        return tuple(ranked[: self._max_keywords])
