"""Deepgram's shapes: words, utterances, the prerecorded response, live messages, errors."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
import pytest

from application.access import Unauthorized
from application.transcribe_audio import TranscriptionResult
from domain import words as timing
from domain.errors import Busy
from domain.speech import Segment, Transcript, Word
from entrypoints.deepgram import shapes
from entrypoints.deepgram.query import UnsupportedFeature
from entrypoints.errors import body_for, headers_of, problem_of

WORDS = (
    Word("Hello,", 0.1, 0.4, 0.9),
    Word("world.", 0.5, 0.9, 0.7),
    Word("—", 0.9, 0.9, 0.1),  # punctuation only: not a word
    Word("Don't", 2.0, 2.3, 0.8),
    Word("stop!", 2.3, 2.7, 0.6),
)
TRANSCRIPT = Transcript(
    text="Hello, world. — Don't stop!",
    language="en",
    language_probability=0.97,
    duration=3.0,
    segments=(
        Segment(0.0, 1.0, "Hello, world. —", -0.1, 0.0),
        Segment(2.0, 2.8, "Don't stop!", -0.3, 0.0),
    ),
    words=WORDS,
)
RESULT = TranscriptionResult(TRANSCRIPT, None, 12.0)


def test_plain_is_deepgrams_unpunctuated_form() -> None:
    assert timing.plain("Hello, World! Don't — stop...") == "hello world don't stop"


def test_timed_words_keep_the_models_times() -> None:
    words = timing.timed_words(WORDS)
    assert [(w.word, w.punctuated_word) for w in words] == [
        ("hello", "Hello,"), ("world", "world."), ("don't", "Don't"), ("stop", "stop!")
    ]  # fmt: skip
    assert (words[0].start, words[0].end, words[0].confidence) == (0.1, 0.4, 0.9)


def test_estimated_words_share_the_span_by_length_in_order() -> None:
    words = timing.estimated_words("It is beautiful...", 1.0, 3.0, 0.5)
    assert [w.word for w in words] == ["it", "is", "beautiful"]
    assert words[0].start == 1.0 and words[-1].end == 3.0
    for before, after in itertools.pairwise(words):
        assert before.start < before.end == after.start < after.end
    assert words[2].end - words[2].start > words[0].end - words[0].start
    assert timing.estimated_words("", 0.0, 1.0, 0.5) == []


def test_segment_words_without_model_times_stay_inside_the_utterance() -> None:
    untimed = msgspec.structs.replace(TRANSCRIPT, words=())
    words = timing.segment_words(untimed, 0.0, 2.5)  # the second segment runs past the end
    assert [w.word for w in words] == ["hello", "world", "don't", "stop"]
    assert all(0.0 <= w.start <= w.end <= 2.5 for w in words)
    assert words[2].confidence == pytest.approx(0.7408, abs=1e-4)  # exp(-0.3)


def test_utterances_split_at_pauses() -> None:
    words = timing.timed_words(WORDS)
    first, second = shapes.utterances(words, 0.8, punctuate=True)
    assert first["transcript"] == "Hello, world." and second["transcript"] == "Don't stop!"
    assert (first["start"], first["end"], second["start"], second["end"]) == (0.1, 0.9, 2.0, 2.7)
    assert first["confidence"] == 0.8 and first["channel"] == 0 and first["id"] != second["id"]
    assert [w["word"] for w in first["words"]] == ["hello", "world"]
    assert len(shapes.utterances(words, 1.5, punctuate=False)) == 1
    (plain,) = shapes.utterances(words, 1.5, punctuate=False)
    assert plain["transcript"] == "hello world don't stop"
    assert "punctuated_word" not in plain["words"][0]


def test_the_prerecorded_response() -> None:
    body = shapes.prerecorded(
        RESULT,
        request="req-1",
        created=0.0,
        sha256="ab",
        model="tiny.en",
        punctuate=False,
        with_utterances=False,
        utt_split=0.8,
        detect_language=True,
    )
    metadata = body["metadata"]
    uid = shapes.model_uuid("tiny.en")
    assert metadata == {
        "transaction_key": "deprecated",
        "request_id": "req-1",
        "sha256": "ab",
        "created": "1970-01-01T00:00:00.000Z",
        "duration": 3.0,
        "channels": 1,
        "models": [uid],
        "model_info": {uid: {"name": "tiny.en", "version": "voicepipe", "arch": "whisper"}},
    }
    (channel,) = body["results"]["channels"]
    assert channel["detected_language"] == "en" and channel["language_confidence"] == 0.97
    (best,) = channel["alternatives"]
    assert best["transcript"] == "hello world don't stop"
    assert best["confidence"] == 0.75
    assert "utterances" not in body["results"]


def test_live_messages() -> None:
    words = timing.timed_words(WORDS)
    message = shapes.results_message(
        request="r",
        model="tiny.en",
        start=0.1,
        duration=2.6,
        alternative=shapes.alternative(TRANSCRIPT.text, words, True),
        is_final=True,
        speech_final=True,
        from_finalize=False,
    )
    assert message["type"] == "Results" and message["channel_index"] == [0, 1]
    assert message["channel"]["alternatives"][0]["transcript"] == TRANSCRIPT.text
    assert message["metadata"]["model_uuid"] == shapes.model_uuid("tiny.en")
    assert shapes.model_uuid("tiny.en") != shapes.model_uuid("base")
    metadata = shapes.metadata_message(
        request="r", model="tiny.en", created=1.5, duration=2.0, sha256="cd"
    )
    assert metadata["type"] == "Metadata" and metadata["created"] == "1970-01-01T00:00:01.500Z"
    error = shapes.error_message("bad", "what", variant="SchemaError", message="x")
    assert error == {
        "type": "Error",
        "variant": "SchemaError",
        "description": "what",
        "code": "bad",
        "message": "x",
    }


def test_rest_errors_in_deepgrams_shape() -> None:
    def answer(error: Exception) -> tuple[int, dict[str, Any], dict[str, str]]:
        problem = problem_of(error)
        return problem.status, body_for("/v1/listen", problem), headers_of(problem)

    status, body, headers = answer(UnsupportedFeature("diarize", "diarize: no"))
    assert status == 400 and headers == {}
    assert body["err_code"] == "UNSUPPORTED_FEATURE" and body["param"] == "diarize"
    assert body["err_msg"] == "diarize: no" and "request_id" in body
    status, body, headers = answer(Busy("queue full"))
    assert (status, body["err_code"], headers["retry-after"]) == (503, "BUSY", "1")
    status, _, headers = answer(Unauthorized("no key"))
    assert status == 401 and "www-authenticate" in headers
    status, body, _ = answer(RuntimeError("secret detail"))
    assert status == 500 and "secret" not in body["err_msg"]
