"""Deepgram's wire shapes: the prerecorded response, the live messages, errors."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException
from opentelemetry import trace

from application.transcribe_audio import TranscriptionResult
from domain.errors import VoicePipeError
from domain.speech import Segment, Transcript, Word
from entrypoints.errors import deepgram_body, headers_of, problem_of

log = structlog.get_logger(__name__)

CHANNEL_INDEX = [0, 1]  # channel 0 of 1: every stream is mixed down to one
_EDGE_PUNCTUATION = re.compile(r"^[^\w']+|[^\w']+$")


class DgWord(msgspec.Struct, frozen=True):
    """A word as Deepgram times it: `word` plain and lower case, `punctuated_word` as said."""

    word: str
    start: float
    end: float
    confidence: float
    punctuated_word: str


def model_uuid(name: str) -> str:
    """A stable id per model name, as Deepgram identifies its models."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"voicepipe:stt:{name}"))


def model_info(name: str) -> dict[str, str]:
    return {"name": name, "version": "voicepipe", "arch": "whisper"}


def created_at(seconds: float) -> str:
    stamp = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def plain(text: str) -> str:
    """Deepgram's unpunctuated form: lower case, no punctuation around words."""
    return " ".join(w for w in (_EDGE_PUNCTUATION.sub("", t).lower() for t in text.split()) if w)


def confidence(probability: float) -> float:
    return round(min(max(probability, 0.0), 1.0), 4)


def segment_confidence(segment: Segment) -> float:
    return confidence(math.exp(segment.avg_logprob))


def timed_words(words: Sequence[Word]) -> list[DgWord]:
    """The model's own word timings; pieces that are only punctuation are not words."""
    out = []
    for word in words:
        bare = plain(word.word)
        if bare:
            out.append(
                DgWord(bare, word.start, word.end, confidence(word.probability), word.word.strip())
            )
    return out


def estimated_words(text: str, start: float, end: float, probability: float) -> list[DgWord]:
    """Words spread over [start, end] by their length in characters: for transcripts whose
    model call timed only the whole (a stream's utterances, its drafts)."""
    tokens = [t for t in text.split() if plain(t)]
    total = sum(len(t) + 1 for t in tokens)
    out: list[DgWord] = []
    at = 0
    span = max(end - start, 0.0)
    for token in tokens:
        begin = start + span * at / total
        at += len(token) + 1
        finish = start + span * at / total
        out.append(
            DgWord(plain(token), round(begin, 3), round(finish, 3), confidence(probability), token)
        )
    return out


def segment_words(transcript: Transcript, start: float, end: float) -> list[DgWord]:
    if transcript.words:
        return timed_words(transcript.words)
    words: list[DgWord] = []
    for segment in transcript.segments:  # Whisper's segment times can run past the audio
        low = max(segment.start, start)
        high = max(min(segment.end, end), low)
        words += estimated_words(segment.text, low, high, segment_confidence(segment))
    if not words and transcript.text:
        words = estimated_words(transcript.text, start, end, 0.0)
    return words


def word_shape(word: DgWord, punctuate: bool) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "word": word.word,
        "start": word.start,
        "end": word.end,
        "confidence": word.confidence,
    }
    if punctuate:
        shape["punctuated_word"] = word.punctuated_word
    return shape


def mean_confidence(words: Sequence[DgWord], fallback: float = 0.0) -> float:
    if not words:
        return fallback
    return confidence(sum(w.confidence for w in words) / len(words))


def transcript_text(text: str, words: Sequence[DgWord], punctuate: bool) -> str:
    if punctuate:
        return text
    return " ".join(w.word for w in words) if words else plain(text)


def alternative(
    text: str, words: Sequence[DgWord], punctuate: bool, fallback: float = 0.0
) -> dict[str, Any]:
    return {
        "transcript": transcript_text(text, words, punctuate),
        "confidence": mean_confidence(words, fallback),
        "words": [word_shape(w, punctuate) for w in words],
    }


def utterances(words: Sequence[DgWord], split: float, punctuate: bool) -> list[dict[str, Any]]:
    """Words grouped where the silence between two is at least `split` seconds."""
    groups: list[list[DgWord]] = []
    for word in words:
        if groups and word.start - groups[-1][-1].end < split:
            groups[-1].append(word)
        else:
            groups.append([word])
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
        for group in groups
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


def error_body(error: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Deepgram's REST error: `err_code` (the service's code, upper case), `err_msg`,
    `request_id`."""
    problem = problem_of(error)
    if problem.status >= 500 and problem.code == "internal_error":
        log.error("unhandled error", exc_info=error)
        trace.get_current_span().record_exception(error)
    trace.get_current_span().set_attribute("error.type", problem.code)
    return problem.status, deepgram_body(problem), headers_of(problem)


def deepgram_error(_: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    status, body, headers = error_body(error)
    return Response(body, status_code=status, headers=headers or None)


# Named one by one: the app's handlers for these classes would otherwise win.
DEEPGRAM_EXCEPTION_HANDLERS = {
    VoicePipeError: deepgram_error,
    HTTPException: deepgram_error,
    Exception: deepgram_error,
}
