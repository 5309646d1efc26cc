"""Results of the use cases as wire objects, shared by REST and the WebSocket."""

from __future__ import annotations

from urllib.parse import quote

import msgspec
import pybase64
from litestar import Response

from application.synthesize_speech import SpeechResult
from application.transcribe_audio import TranscriptionResult
from domain.speech import AudioFormat, Segment, Sentiment

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
