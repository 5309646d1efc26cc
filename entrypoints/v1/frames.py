"""The v1 WebSocket's server frames: replies, streamed speech, transcripts, errors."""

from __future__ import annotations

import msgspec

from application.synthesize_speech import SpeechResult
from application.transcribe_audio import TranscriptionResult
from domain.speech import Segment, Sentiment
from entrypoints.errors import problem_of, request_id
from entrypoints.tracing import current_trace_id
from entrypoints.v1.views import speech_view, transcript_view


class AudioReply(msgspec.Struct, frozen=True, tag="audio", tag_field="type"):
    id: str | None
    audio: str
    text: str
    cached: bool
    format: str
    content_type: str
    sample_rate: int
    duration: float
    latency_ms: float
    provider: str
    voice: str
    fallback: bool
    sentiment: Sentiment | None
    request_id: str


class TranscriptReply(msgspec.Struct, frozen=True, tag="transcript", tag_field="type"):
    id: str | None
    text: str
    language: str
    language_probability: float
    duration: float
    latency_ms: float
    segments: tuple[Segment, ...]
    sentiment: Sentiment | None
    request_id: str


class AudioStart(msgspec.Struct, frozen=True, tag="audio_start", tag_field="type"):
    id: str
    sample_rate: int
    transport: str  # "binary" frames or "base64" in audio_chunk messages
    provider: str
    voice: str
    cached: bool
    fallback: bool
    format: str = "pcm_s16le"
    channels: int = 1


class AudioChunk(msgspec.Struct, frozen=True, tag="audio_chunk", tag_field="type"):
    id: str
    seq: int
    audio: str


class AudioEnd(msgspec.Struct, frozen=True, tag="audio_end", tag_field="type"):
    id: str
    duration: float
    latency_ms: float
    first_chunk_ms: float
    cached: bool
    cancelled: bool
    chunks: int
    sentiment: Sentiment | None
    text: str


class SttStarted(msgspec.Struct, frozen=True, tag="stt_started", tag_field="type"):
    id: str
    sample_rate: int = 16_000


class SttStopped(msgspec.Struct, frozen=True, tag="stt_stopped", tag_field="type"):
    id: str


class PartialFrame(msgspec.Struct, frozen=True, tag="partial", tag_field="type"):
    id: str
    utterance: int
    text: str
    audio_ms: float


class FinalFrame(msgspec.Struct, frozen=True, tag="final", tag_field="type"):
    id: str
    utterance: int
    start: float
    end: float
    text: str
    language: str
    language_probability: float
    segments: tuple[Segment, ...]
    sentiment: Sentiment | None
    latency_ms: float
    end_of_speech_ms: float


class ErrorFrame(msgspec.Struct, frozen=True, tag="error", tag_field="type"):
    code: str
    message: str
    id: str | None = None
    request_id: str = ""
    trace_id: str = ""


class UtteranceFailed(msgspec.Struct, frozen=True, tag="error", tag_field="type"):
    id: str
    utterance: int
    code: str
    message: str


class Closing(msgspec.Struct, frozen=True, tag="closing", tag_field="type"):
    reason: str


ServerFrame = (
    AudioReply
    | TranscriptReply
    | AudioStart
    | AudioChunk
    | AudioEnd
    | SttStarted
    | SttStopped
    | PartialFrame
    | FinalFrame
    | ErrorFrame
    | UtteranceFailed
    | Closing
)


def audio_reply(result: SpeechResult, message_id: str | None, request_id: str) -> AudioReply:
    view = speech_view(result, request_id)
    fields = msgspec.structs.asdict(view)
    return AudioReply(id=message_id, audio=fields.pop("audio_base64"), **fields)


def transcript_reply(
    result: TranscriptionResult, message_id: str | None, request_id: str
) -> TranscriptReply:
    fields = msgspec.structs.asdict(transcript_view(result, request_id))
    return TranscriptReply(id=message_id, **fields)


def error_frame(error: BaseException, message_id: str | None) -> ErrorFrame:
    """Any error as the v1 `error` frame, with the ids to find it in the logs and traces."""
    problem = problem_of(error)
    return ErrorFrame(problem.code, problem.message, message_id, request_id(), current_trace_id())
