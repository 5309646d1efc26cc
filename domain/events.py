"""Domain events: one per pipeline step, past tense, with no user content.

Events carry lengths, hashes and timings, never texts or audio (privacy by design).
The log of these events is the source of truth for /stats and the metrics.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import msgspec

Pipeline = Literal["tts", "stt"]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True):
    """Base of every domain event; `type` on the wire is the class name."""

    pipeline_id: str
    occurred_at: float


class RequestReceived(Event, frozen=True):
    pipeline: Pipeline
    transport: str
    input_size: int  # characters for TTS, bytes for STT


class CacheLookedUp(Event, frozen=True):
    hit: bool
    latency_ms: float


class SpeechSynthesized(Event, frozen=True):
    provider: str
    voice: str
    audio_ms: float
    latency_ms: float


class AudioProcessed(Event, frozen=True):
    gain_db: float
    trimmed_ms: float
    latency_ms: float


class AudioEncoded(Event, frozen=True):
    audio_format: str
    size: int
    latency_ms: float


class SentimentAnalysed(Event, frozen=True):
    label: str
    latency_ms: float


class AudioDecoded(Event, frozen=True):
    size: int
    audio_ms: float
    latency_ms: float


class SpeechTranscribed(Event, frozen=True):
    model: str
    language: str
    language_probability: float
    audio_ms: float
    latency_ms: float
    segments: int
    end_of_speech_ms: float | None = None  # streaming: end of speech to transcript ready


class ProviderFailed(Event, frozen=True):
    """A TTS provider failed after its retries, or was skipped because its circuit is open."""

    provider: str
    code: str
    latency_ms: float


class ProviderFellBack(Event, frozen=True):
    """The request was served by a later provider than the first one it was meant for."""

    from_provider: str
    to_provider: str


class CircuitOpened(Event, frozen=True):
    provider: str
    shared: bool = False  # opened because another instance saw the failures (shared breakers)


class CircuitHalfOpened(Event, frozen=True):
    provider: str


class CircuitClosed(Event, frozen=True):
    provider: str


class AudioStreamed(Event, frozen=True):
    """A streamed synthesis ended: how soon its first chunk came, and how much it sent."""

    chunks: int
    first_chunk_ms: float
    audio_ms: float
    cancelled: bool


class StepDegraded(Event, frozen=True):
    """An optional step (cache, sentiment) failed; the request went on without it."""

    step: str
    code: str


class RequestCompleted(Event, frozen=True):
    pipeline: Pipeline
    latency_ms: float
    cached: bool = False


class RequestFailed(Event, frozen=True):
    pipeline: Pipeline
    step: str
    code: str
    latency_ms: float


class LanguageModelReplied(Event, frozen=True):
    """A chat model's answer in a conversation (its pipeline_id is the response's)."""

    model: str
    first_token_ms: float
    latency_ms: float
    chars: int
    status: str  # completed, cancelled, incomplete, failed


class VoiceReplied(Event, frozen=True):
    """The first audio of an answer went out: end of the user's speech to here."""

    voice_to_voice_ms: float


class ReplyInterrupted(Event, frozen=True):
    """The user spoke over an answer, which stopped after `audio_ms` of audio."""

    audio_ms: float


class AnswerSpeculated(Event, frozen=True):
    """A conversation began answering at a likely end of turn: `used` when the turn was
    confirmed with the same words, else dropped (the user went on, or said otherwise)."""

    used: bool


DomainEvent: TypeAlias = (
    RequestReceived
    | CacheLookedUp
    | SpeechSynthesized
    | AudioProcessed
    | AudioEncoded
    | SentimentAnalysed
    | AudioDecoded
    | SpeechTranscribed
    | ProviderFailed
    | ProviderFellBack
    | CircuitOpened
    | CircuitHalfOpened
    | CircuitClosed
    | AudioStreamed
    | StepDegraded
    | RequestCompleted
    | RequestFailed
    | LanguageModelReplied
    | VoiceReplied
    | ReplyInterrupted
    | AnswerSpeculated
)

# The pipeline step each timed event records (its `latency_ms` is that step's duration).
STEP_OF: dict[type[Event], str] = {
    CacheLookedUp: "cache",
    SpeechSynthesized: "synthesis",
    AudioProcessed: "processing",
    AudioEncoded: "encoding",
    SentimentAnalysed: "sentiment",
    AudioDecoded: "decoding",
    SpeechTranscribed: "transcription",
    LanguageModelReplied: "llm",
}

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(DomainEvent)


def encode_event(event: DomainEvent) -> bytes:
    """Compact binary form for logs that store bytes (Redis streams)."""
    return _encoder.encode(event)


def decode_event(data: bytes) -> DomainEvent:
    event: DomainEvent = _decoder.decode(data)
    return event
