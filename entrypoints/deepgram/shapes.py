"""Deepgram's wire shapes: the prerecorded response, the live messages, errors."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from application.transcribe_audio import TranscriptionResult
from domain.words import (
    TimedWord,
    confidence,
    mean_confidence,
    plain,
    segment_confidence,
    spoken_groups,
    timed_words,
)

log = structlog.get_logger(__name__)

CHANNEL_INDEX = [0, 1]  # channel 0 of 1: every stream is mixed down to one


def model_uuid(name: str) -> str:
    """A stable id per model name, as Deepgram identifies its models."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"voicepipe:stt:{name}"))


def model_info(name: str) -> dict[str, str]:
    return {"name": name, "version": "voicepipe", "arch": "whisper"}


def created_at(seconds: float) -> str:
    stamp = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def word_shape(word: TimedWord, punctuate: bool) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "word": word.word,
        "start": word.start,
        "end": word.end,
        "confidence": word.confidence,
    }
    if punctuate:
        shape["punctuated_word"] = word.punctuated_word
    return shape


def transcript_text(text: str, words: Sequence[TimedWord], punctuate: bool) -> str:
    if punctuate:
        return text
    return " ".join(w.word for w in words) if words else plain(text)


def alternative(
    text: str, words: Sequence[TimedWord], punctuate: bool, fallback: float = 0.0
) -> dict[str, Any]:
    return {
        "transcript": transcript_text(text, words, punctuate),
        "confidence": mean_confidence(words, fallback),
        "words": [word_shape(w, punctuate) for w in words],
    }


def utterances(words: Sequence[TimedWord], split: float, punctuate: bool) -> list[dict[str, Any]]:
    return [
        {
            "start": group[0].start,
            "end": group[-1].end,
            "confidence": mean_confidence(group),
            "channel": 0,
            "transcript": " ".join(w.punctuated_word if punctuate else w.word for w in group),
            "words": [word_shape(w, punctuate) for w in group],
            "id": str(uuid.uuid4()),
        }
        for group in spoken_groups(words, split)
    ]


def prerecorded(
    result: TranscriptionResult,
    *,
    request: str,
    created: float,
    sha256: str,
    model: str,
    punctuate: bool,
    with_utterances: bool,
    utt_split: float,
    detect_language: bool,
) -> dict[str, Any]:
    transcript = result.transcript
    words = timed_words(transcript.words)
    segments = transcript.segments
    fallback = (
        confidence(sum(segment_confidence(s) for s in segments) / len(segments))
        if segments
        else 0.0
    )
    channel: dict[str, Any] = {
        "alternatives": [alternative(transcript.text, words, punctuate, fallback)]
    }
    if detect_language:
        channel["detected_language"] = transcript.language
        channel["language_confidence"] = confidence(transcript.language_probability)
    uid = model_uuid(model)
    results: dict[str, Any] = {"channels": [channel]}
    if with_utterances:
        results["utterances"] = utterances(words, utt_split, punctuate)
    return {
        "metadata": {
            "transaction_key": "deprecated",
            "request_id": request,
            "sha256": sha256,
            "created": created_at(created),
            "duration": transcript.duration,
            "channels": 1,
            "models": [uid],
            "model_info": {uid: model_info(model)},
        },
        "results": results,
    }


def results_message(
    *,
    request: str,
    model: str,
    start: float,
    duration: float,
    alternative: dict[str, Any],
    is_final: bool,
    speech_final: bool,
    from_finalize: bool,
) -> dict[str, Any]:
    return {
        "type": "Results",
        "channel_index": CHANNEL_INDEX,
        "duration": round(duration, 3),
        "start": round(start, 3),
        "is_final": is_final,
        "speech_final": speech_final,
        "from_finalize": from_finalize,
        "channel": {"alternatives": [alternative]},
        "metadata": {
            "request_id": request,
            "model_info": model_info(model),
            "model_uuid": model_uuid(model),
        },
    }


def metadata_message(
    *, request: str, model: str, created: float, duration: float, sha256: str
) -> dict[str, Any]:
    uid = model_uuid(model)
    return {
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": request,
        "sha256": sha256,
        "created": created_at(created),
        "duration": round(duration, 3),
        "channels": 1,
        "models": [uid],
        "model_info": {uid: model_info(model)},
    }


def error_message(
    code: str, description: str, *, variant: str | None = None, message: str | None = None
) -> dict[str, Any]:
    """Deepgram's live `Error`; `variant` is `SchemaError` for a message it cannot read."""
    shape: dict[str, Any] = {
        "type": "Error",
        "variant": variant or code,
        "description": description,
        "code": code,
    }
    if message is not None:
        shape["message"] = message
    return shape
