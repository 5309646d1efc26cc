"""Results of the use cases as wire objects, shared by REST and the WebSocket."""

from __future__ import annotations

from urllib.parse import quote

import msgspec
import pybase64
from litestar import Response

from application.synthesize_speech import SpeechResult
from application.transcribe_audio import TranscriptionResult
from domain.speech import AudioFormat, Segment, Sentiment
from entrypoints.errors import problem_of, request_id
from entrypoints.tracing import current_trace_id

CONTENT_TYPES = {
    AudioFormat.WAV: "audio/wav",
    AudioFormat.MP3: "audio/mpeg",
    AudioFormat.OPUS: "audio/ogg; codecs=opus",
    AudioFormat.FLAC: "audio/flac",
    AudioFormat.AAC: "audio/aac",
    AudioFormat.PCM: "audio/L16",
}


class SpeechView(msgspec.Struct, frozen=True):
    """POST /api/tts response; the WebSocket `audio` message has the same fields."""

    audio_base64: str
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


class TranscriptView(msgspec.Struct, frozen=True):
    text: str
    language: str
    language_probability: float
    duration: float
    latency_ms: float
    segments: tuple[Segment, ...]
    sentiment: Sentiment | None
    request_id: str


def speech_view(result: SpeechResult, request_id: str) -> SpeechView:
    audio = result.audio
    return SpeechView(
        audio_base64=pybase64.b64encode(audio.data).decode("ascii"),
        text=result.text,
        cached=result.cached,
        format=audio.audio_format.value,
        content_type=CONTENT_TYPES[audio.audio_format],
        sample_rate=audio.sample_rate,
        duration=round(audio.duration_ms / 1000.0, 3),
        latency_ms=result.latency_ms,
        provider=audio.voice.provider,
        voice=audio.voice.name,
        fallback=result.fallback,
        sentiment=audio.sentiment,
        request_id=request_id,
    )


def _header_text(value: str) -> str:
    """Percent-encoded UTF-8 for anything outside printable ASCII (and `%`, `,` themselves)."""
    return quote(value, safe=" !\"#$&'()*+-./:;<=>?@[]^_`{|}~")


def speech_headers(result: SpeechResult) -> dict[str, str]:
    """The JSON answer's fields, but for the audio and the text, as `X-Voicepipe-*` headers."""
    audio = result.audio
    headers = {
        "x-voicepipe-cached": "true" if result.cached else "false",
        "x-voicepipe-format": audio.audio_format.value,
        "x-voicepipe-sample-rate": str(audio.sample_rate),
        "x-voicepipe-duration": repr(round(audio.duration_ms / 1000.0, 3)),
        "x-voicepipe-latency-ms": repr(result.latency_ms),
        "x-voicepipe-provider": _header_text(audio.voice.provider),
        "x-voicepipe-voice": _header_text(audio.voice.name),
        "x-voicepipe-fallback": "true" if result.fallback else "false",
    }
    sentiment = audio.sentiment
    if sentiment is not None:
        headers["x-voicepipe-sentiment-polarity"] = repr(sentiment.polarity)
        headers["x-voicepipe-sentiment-subjectivity"] = repr(sentiment.subjectivity)
        headers["x-voicepipe-sentiment-label"] = _header_text(sentiment.label)
        headers["x-voicepipe-sentiment-emotion"] = _header_text(sentiment.emotion)
        headers["x-voicepipe-sentiment-keywords"] = ",".join(map(_header_text, sentiment.keywords))
    return headers


def speech_audio(result: SpeechResult) -> Response[bytes]:
    """POST /api/tts answered with the audio bytes themselves (`Accept: audio/*`)."""
    audio = result.audio
    return Response(
        audio.data,
        media_type=CONTENT_TYPES[audio.audio_format],
        headers=speech_headers(result),
    )


def transcript_view(result: TranscriptionResult, request_id: str) -> TranscriptView:
    transcript = result.transcript
    return TranscriptView(
        text=transcript.text,
        language=transcript.language,
        language_probability=transcript.language_probability,
        duration=transcript.duration,
        latency_ms=result.latency_ms,
        segments=transcript.segments,
        sentiment=result.sentiment,
        request_id=request_id,
    )


# WebSocket frames the server sends (docs/api.md), encoded as they are declared.


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
