"""TextBlobSentimentAnalyzer against the real TextBlob pattern lexicons (no mocks)."""

from __future__ import annotations

import asyncio

import pytest

from adapters.emotion_lexicon import STOPWORDS
from adapters.textblob_sentiment import TextBlobSentimentAnalyzer
from domain.speech import Sentiment


@pytest.fixture(scope="module")
def analyzer() -> TextBlobSentimentAnalyzer:
    return TextBlobSentimentAnalyzer()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I love this wonderful phone, it is absolutely great!", "positive"),
        ("This is the worst, most awful product I have ever bought.", "negative"),
        ("The meeting is at three in room twelve.", "neutral"),
    ],
)
async def test_labels(analyzer: TextBlobSentimentAnalyzer, text: str, label: str) -> None:
    result = await analyzer.analyse(text)
    assert result.label == label
    assert -1.0 <= result.polarity <= 1.0
    assert 0.0 <= result.subjectivity <= 1.0


@pytest.mark.asyncio
async def test_scores_are_rounded_to_four_decimals(
    analyzer: TextBlobSentimentAnalyzer,
) -> None:
    result = await analyzer.analyse("This is the worst, most awful product I have ever bought.")
    assert result.subjectivity == round(result.subjectivity, 4)
    assert result.polarity == round(result.polarity, 4)


@pytest.mark.asyncio
async def test_neutral_threshold_is_configurable() -> None:
    text = "I am scared of the dark"  # polarity -0.15
    assert (await TextBlobSentimentAnalyzer().analyse(text)).label == "negative"
    strict = TextBlobSentimentAnalyzer(neutral_threshold=0.5)
    assert (await strict.analyse(text)).label == "neutral"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("text", "emotion"),
    [
        ("I am so happy and delighted today", "joy"),
        ("I am furious and angry about this", "anger"),
        ("I am scared of the dark", "fear"),
        ("She was sad and crying", "sadness"),
        ("Wow, I was completely stunned, what a surprise!", "surprise"),
        ("He cried and sobbed for hours", "sadness"),  # inflected forms
        ("The train leaves at noon from platform four.", "neutral"),
    ],
)
async def test_emotions(analyzer: TextBlobSentimentAnalyzer, text: str, emotion: str) -> None:
    assert (await analyzer.analyse(text)).emotion == emotion


@pytest.mark.asyncio
async def test_negated_emotion_word_does_not_count(
    analyzer: TextBlobSentimentAnalyzer,
) -> None:
    result = await analyzer.analyse("I am not happy at all")
    assert result.emotion != "joy"


@pytest.mark.asyncio
async def test_polarity_is_the_fallback_without_emotion_words(
    analyzer: TextBlobSentimentAnalyzer,
) -> None:
    positive = await analyzer.analyse("What a perfect result")
    assert positive.polarity > 0.3
    assert positive.emotion == "joy"
    negative = await analyzer.analyse("The hotel was dirty and the staff were rude")
    assert negative.polarity < -0.3
    assert negative.emotion == "sadness"
    mildly_negative = await analyzer.analyse("The service was a little slow")
    assert -0.3 <= mildly_negative.polarity < -0.1
    assert mildly_negative.emotion == "neutral"


@pytest.mark.asyncio
async def test_keywords_ranked_by_frequency_then_first_appearance(
    analyzer: TextBlobSentimentAnalyzer,
) -> None:
    result = await analyzer.analyse("The weather in Paris is beautiful and the weather is warm")
    assert result.keywords[0] == "weather"
    assert "paris" in result.keywords
    assert result.keywords.index("paris") < result.keywords.index("warm")
    assert len(result.keywords) == len(set(result.keywords))


@pytest.mark.asyncio
async def test_keywords_are_capped_clean_and_without_stopwords(
    analyzer: TextBlobSentimentAnalyzer,
) -> None:
    text = (
        "I'm sure that the old red car and the new blue bike, the big house, "
        "the small garden, the quiet street and the busy town are all there. "
        "It's what they've got!"
    )
    result = await analyzer.analyse(text)
    assert 0 < len(result.keywords) <= 5
    for word in result.keywords:
        assert word == word.lower()
        assert word not in STOPWORDS
        assert any(c.isalpha() for c in word)
        assert not set(word) & set('!?,;:()"')


@pytest.mark.asyncio
async def test_proper_nouns_can_be_left_out() -> None:
    analyzer = TextBlobSentimentAnalyzer(include_proper_nouns=False)
    result = await analyzer.analyse("The weather in Paris is beautiful and the weather is warm")
    assert "paris" not in result.keywords
    assert result.keywords[0] == "weather"


@pytest.mark.asyncio
@pytest.mark.parametrize("text", ["", "   \n\t"])
async def test_empty_text(analyzer: TextBlobSentimentAnalyzer, text: str) -> None:
    assert await analyzer.analyse(text) == Sentiment(
        polarity=0.0, subjectivity=0.0, label="neutral", emotion="neutral", keywords=()
    )


@pytest.mark.asyncio
async def test_long_text_in_a_worker_thread_matches_inline(
    analyzer: TextBlobSentimentAnalyzer,
) -> None:
    sentence = "The weather in Paris is beautiful, and I am so happy to walk by the river. "
    text = (sentence * (5000 // len(sentence) + 1))[:5000]
    result = await analyzer.analyse(text)  # over the inline limit: runs in a worker thread
    assert result.label == "positive"
    assert result.emotion == "joy"
    assert result.keywords[0] == "weather"
    inline = TextBlobSentimentAnalyzer(inline_max_chars=len(text))
    assert await inline.analyse(text) == result


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "text",
    [
        "I love it 😀🎉🔥 so much!!!",
        "😀😀😀",
        "Café naïve Zürich — “quotes” and it’s fine… 日本語のテキスト",
        "\u200b\u00a0\ufeff",
        "?!.,;:",
    ],
)
async def test_unicode_and_emoji_do_not_crash(
    analyzer: TextBlobSentimentAnalyzer, text: str
) -> None:
    result = await analyzer.analyse(text)
    assert result.label in {"positive", "negative", "neutral"}
    assert result.emotion in {"joy", "sadness", "anger", "fear", "surprise", "neutral"}
    assert all(any(c.isalpha() for c in word) for word in result.keywords)


@pytest.mark.asyncio
async def test_concurrent_long_texts_agree(analyzer: TextBlobSentimentAnalyzer) -> None:
    text = "I am furious and angry about the broken train and the late bus. " * 10
    results = await asyncio.gather(*(analyzer.analyse(text) for _ in range(8)))
    assert len(set(results)) == 1
    assert results[0].emotion == "anger"
