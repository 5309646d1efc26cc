"""Choosing the JSON answer or the audio bytes of POST /api/tts from `Accept`."""

from __future__ import annotations

import pytest

from entrypoints.v1.negotiation import Answer, NotAcceptable, choose_answer


@pytest.mark.parametrize(
    ("accept", "audio_format", "answer"),
    [
        (None, "wav", Answer.JSON),
        ("", "wav", Answer.JSON),
        ("*/*", "wav", Answer.JSON),
        ("application/json", "mp3", Answer.JSON),
        ("audio/*", "wav", Answer.AUDIO),
        ("audio/*", "opus", Answer.AUDIO),
        ("AUDIO/WAV", "wav", Answer.AUDIO),
        ("audio/x-wav", "WAV", Answer.AUDIO),
        ("audio/mpeg", "mp3", Answer.AUDIO),
        ("audio/L16", "pcm", Answer.AUDIO),
        ("audio/*, application/json", "wav", Answer.JSON),  # equal weights: JSON, as v1 was
        ("audio/wav, */*", "wav", Answer.AUDIO),  # the more specific range wins a tie
        ("application/json;q=0.9, audio/*", "flac", Answer.AUDIO),
        ("audio/*;q=0.2, application/json;q=0.5", "wav", Answer.JSON),
        ("audio/mpeg, application/json;q=0.1", "wav", Answer.JSON),  # wav is not audio/mpeg
        ("text/html, */*;q=0.1", "wav", Answer.JSON),
        ("audio/*", "xyz", Answer.JSON),  # an unknown format gets its own JSON error later
    ],
)
def test_answer_follows_the_weights(accept: str | None, audio_format: str, answer: Answer) -> None:
    assert choose_answer(accept, audio_format) is answer


@pytest.mark.parametrize(
    ("accept", "audio_format"),
    [
        ("text/html", "wav"),
        ("audio/mpeg", "wav"),
        ("audio/wav", "mp3"),
        ("image/*, text/*", "wav"),
        ("application/json;q=0, audio/*;q=0", "wav"),
        ("*/*;q=0", "wav"),
        ("audio/*;q=oops", "wav"),
    ],
)
def test_nothing_acceptable_is_refused(accept: str, audio_format: str) -> None:
    with pytest.raises(NotAcceptable) as refused:
        choose_answer(accept, audio_format)
    assert refused.value.status == 406 and refused.value.code == "not_acceptable"
    assert "application/json" in refused.value.message
