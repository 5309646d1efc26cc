"""OpenAI-compatible routes under /v1: the same use cases as the v1 API, OpenAI's wire shapes.

Errors use OpenAI's body ({"error": {"message", "type", "param", "code"}}) so the official
client raises its usual exceptions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import numpy as np
import structlog
from litestar import Request, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import HTTPException
from litestar.response import Stream

from application.access import Principal
from application.stream_speech import StreamChunk, StreamStarted
from application.synthesize_speech import SpeakCommand
from domain.errors import InvalidRequest, UnknownVoice, VoicePipeError
from domain.speech import AudioClip, AudioFormat, Segment, TranscriptionHints
from entrypoints.http_api import container_of
from entrypoints.http_streaming import streaming_wav_header
from entrypoints.security import principal_of
from entrypoints.subtitles import to_srt, to_vtt
from entrypoints.views import CONTENT_TYPES
from entrypoints.wire import decode_body, read_form

log = structlog.get_logger(__name__)

OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse",
)  # fmt: skip
SPEECH_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
TRANSCRIPT_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
PCM_RATE = 24_000  # OpenAI's pcm is 24 kHz s16le
# Formats whose pieces can be sent one after another: mp3 and ADTS AAC are frame streams and
# Ogg allows chained streams; FLAC's header covers the whole file, so it goes out in one piece.
STREAMABLE = ("wav", "pcm", "mp3", "aac", "opus")
LANGUAGE_NAMES = {
    "en": "english", "de": "german", "es": "spanish", "fr": "french", "it": "italian",
    "pt": "portuguese", "nl": "dutch", "ru": "russian", "zh": "chinese", "ja": "japanese",
}  # fmt: skip


class OpenAIError(VoicePipeError):
    def __init__(self, message: str, *, param: str | None, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.param = param
        self.code = code
        self.status = status


class SpeechBody(msgspec.Struct, frozen=True):
    input: str
    model: str = "tts-1"
    voice: str = "alloy"
    response_format: str = "mp3"
    speed: float = 1.0


def _voice(requested: str, voices: dict[str, list[str]]) -> str | None:
    """OpenAI's voice names all map to the first provider's default voice."""
    if any(requested in names for names in voices.values()):
        return requested
    if requested.lower() in OPENAI_VOICES:
        return None
    known = ", ".join([*OPENAI_VOICES, *(v for names in voices.values() for v in names)])
    raise OpenAIError(f"Unknown voice '{requested}'. Use one of: {known}", param="voice",
                      code="invalid_value")  # fmt: skip


@post("/audio/speech", status_code=200)
async def speech(request: Request[Any, Any, Any]) -> Response[bytes] | Stream:
    container = container_of(request)
    body = decode_body(await request.body(), SpeechBody)
    if body.response_format not in SPEECH_FORMATS:
        raise OpenAIError(f"response_format must be one of {', '.join(SPEECH_FORMATS)}",
                          param="response_format", code="invalid_value")  # fmt: skip
    if not 0.25 <= body.speed <= 4.0:
        raise OpenAIError("speed must be between 0.25 and 4.0", param="speed", code="invalid_value")
    voice = _voice(body.voice, container.synthesize.voices())
    await container.access.charge_text(principal_of(request), len(body.input))
    request_id = str(structlog.contextvars.get_contextvars().get("request_id", ""))
    if body.response_format in STREAMABLE and body.speed == 1.0:
        return await _streamed(container, body, voice, request_id)
    audio_format = "wav" if body.response_format == "pcm" else body.response_format
    command = SpeakCommand(
        text=body.input, voice=voice, audio_format=audio_format, speed=body.speed
    )
    result = await container.synthesize.execute(command, pipeline_id=request_id, transport="openai")
    data = result.audio.data
    if body.response_format == "pcm":
        clip: AudioClip = await container.transcribe.codec.decode(data, PCM_RATE)
        data = clip.pcm
    headers = {"x-provider": result.audio.voice.provider, "x-voice": result.audio.voice.name}
    media_type = CONTENT_TYPES[AudioFormat.parse(body.response_format)]
    return Response(data, media_type=media_type, headers=headers)


async def _streamed(container: Any, body: SpeechBody, voice: str | None, request_id: str) -> Stream:
    """Audio goes out as each sentence is synthesized: raw for wav/pcm, encoded piece by piece."""
    stream = container.stream_speech.open(
        pipeline_id=request_id, transport="openai", voice=voice, text=body.input
    )
    items = stream.items()
    try:
        started = await anext(items)
    except BaseException:
        await container.stream_speech.close(stream)
        raise
    assert isinstance(started, StreamStarted)
    rate = started.sample_rate
    audio_format = AudioFormat.parse(body.response_format)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            if body.response_format == "wav":
                yield streaming_wav_header(rate)
            async for item in items:
                if not isinstance(item, StreamChunk) or not item.pcm:
                    continue  # a piece trimmed to nothing ("...") has no samples to send
                if body.response_format == "wav":
                    yield item.pcm
                elif body.response_format == "pcm":
                    yield _to_24k(item.pcm, rate)
                else:
                    clip = AudioClip(item.pcm, rate)
                    data = await container.transcribe.codec.encode(clip, audio_format)
                    yield data if item.seq == 0 else _without_id3(data)
        finally:
            stream.cancel()
            await container.stream_speech.close(stream)

    headers = {"x-provider": started.provider, "x-voice": started.voice}
    media_type = CONTENT_TYPES[AudioFormat.parse(body.response_format)]
    return Stream(chunks(), media_type=media_type, headers=headers)


def _without_id3(data: bytes) -> bytes:
    """A tag belongs at the start of a file; mid-stream, decoders choke on it."""
    if data[:3] != b"ID3" or len(data) < 10:
        return data
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]  # syncsafe integer
    return data[10 + size :]


def _to_24k(pcm: bytes, rate: int) -> bytes:
    """OpenAI's pcm is 24 kHz; each chunk starts and ends in silence, so per-chunk is fine."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    if not len(samples):
        return b""
    count = round(len(samples) * PCM_RATE / rate)
    positions = np.linspace(0, len(samples) - 1, count)
    resampled = np.interp(positions, np.arange(len(samples)), samples)
    return bytes(np.clip(resampled, -32768, 32767).astype("<i2").tobytes())


@post("/audio/transcriptions", status_code=200)
async def transcriptions(request: Request[Any, Any, Any]) -> Response[Any] | Stream:
    return await _listen(request, "transcribe")


@post("/audio/translations", status_code=200)
async def translations(request: Request[Any, Any, Any]) -> Response[Any] | Stream:
    """Speech in any language to English text (needs a multilingual model, e.g. `base`)."""
    return await _listen(request, "translate")


async def _listen(request: Request[Any, Any, Any], task: str) -> Response[Any] | Stream:
    container = container_of(request)
    if request.content_type[0] != "multipart/form-data":
        raise OpenAIError("send the audio as multipart/form-data with a `file` field",
                          param="file", code="invalid_request")  # fmt: skip
    form = await read_form(request)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise OpenAIError("a `file` field with the audio is required", param="file",
                          code="invalid_value")  # fmt: skip
    _only_text_fields(form)
    response_format = str(form.get("response_format") or "json")
    if response_format not in TRANSCRIPT_FORMATS:
        raise OpenAIError(f"response_format must be one of {', '.join(TRANSCRIPT_FORMATS)}",
                          param="response_format", code="invalid_value")  # fmt: skip
    language = str(form.get("language") or "") or None
    model = str(form.get("model") or "") or None
    request_id = str(structlog.contextvars.get_contextvars().get("request_id", ""))
    options: dict[str, Any] = {"model": model, "task": task, "hints": _hints(form)}
    principal = principal_of(request)
    await container.access.check_audio(principal)
    if str(form.get("stream") or "false").lower() == "true":
        return _sse(container, await upload.read(), language, request_id, options, principal)
    result = await container.transcribe.execute(
        await upload.read(), language, pipeline_id=request_id, transport="openai", **options
    )
    await container.access.charge_audio(principal, result.transcript.duration)
    transcript = result.transcript
    words = [{"word": w.word, "start": w.start, "end": w.end} for w in transcript.words]
    if response_format == "text":
        return Response(transcript.text + "\n", media_type="text/plain")
    if response_format == "srt":
        return Response(to_srt(transcript.segments), media_type="text/plain")
    if response_format == "vtt":
        return Response(to_vtt(transcript.segments), media_type="text/vtt")
    if response_format == "json":
        return Response({"text": transcript.text})
    return Response(
        {
            "task": task,
            "language": LANGUAGE_NAMES.get(transcript.language, transcript.language),
            "duration": transcript.duration,
            "text": transcript.text,
            "segments": [
                {
                    "id": i,
                    "seek": 0,
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "tokens": [],
                    "temperature": 0.0,
                    "avg_logprob": s.avg_logprob,
                    "compression_ratio": 1.0,
                    "no_speech_prob": s.no_speech_prob,
                }
                for i, s in enumerate(transcript.segments)
            ],
            **({"words": words} if options["hints"].words else {}),
        }
    )


# The form fields besides `file`: each is text, and read as text below.
TEXT_FIELDS = ("model", "language", "prompt", "response_format", "temperature", "stream",
               "timestamp_granularities[]", "timestamp_granularities")  # fmt: skip


def _only_text_fields(form: Any) -> None:
    """A file sent where text belongs is the caller's mistake (400), not a crash (500)."""
    for name in TEXT_FIELDS:
        if any(isinstance(value, UploadFile) for value in form.getall(name, [])):
            raise OpenAIError(f"`{name}` must be a text field, not a file", param=name,
                              code="invalid_value")  # fmt: skip


def _hints(form: Any) -> TranscriptionHints:
    granularities = set(form.getall("timestamp_granularities[]", []))
    granularities |= set(form.getall("timestamp_granularities", []))
    if granularities - {"segment", "word"}:
        raise OpenAIError("timestamp_granularities are segment and word",
                          param="timestamp_granularities", code="invalid_value")  # fmt: skip
    temperature = form.get("temperature")
    try:
        value = float(temperature) if temperature not in (None, "") else None
    except ValueError:
        value = -1.0
    if value is not None and not 0.0 <= value <= 1.0:
        raise OpenAIError("temperature is a number from 0 to 1", param="temperature",
                          code="invalid_value")  # fmt: skip
    prompt = str(form.get("prompt") or "") or None
    return TranscriptionHints(prompt=prompt, temperature=value, words="word" in granularities)


def _sse(
    container: Any,
    audio: bytes,
    language: str | None,
    request_id: str,
    options: dict[str, Any],
    principal: Principal,
) -> Stream:
    """Server-sent events as OpenAI streams them: a delta per segment, then the whole text."""
    loop = asyncio.get_running_loop()
    segments: asyncio.Queue[Segment | None] = asyncio.Queue()

    def progress(segment: Segment) -> None:  # runs on the model's thread
        loop.call_soon_threadsafe(segments.put_nowait, segment)

    async def run() -> Any:
        try:
            result = await container.transcribe.execute(
                audio,
                language,
                pipeline_id=request_id,
                transport="openai",
                progress=progress,
                **options,
            )
            await container.access.charge_audio(principal, result.transcript.duration)
            return result
        finally:
            segments.put_nowait(None)

    async def events() -> AsyncIterator[bytes]:
        task = asyncio.create_task(run())
        first = True
        while (segment := await segments.get()) is not None:
            if segment.text:
                delta = segment.text if first else " " + segment.text
                first = False
                yield _event({"type": "transcript.text.delta", "delta": delta})
        try:
            result = await task
        except VoicePipeError as error:
            yield _event({"type": "error", "error": {"message": error.message, "code": error.code}})
            return
        yield _event({"type": "transcript.text.done", "text": result.transcript.text})

    return Stream(events(), media_type="text/event-stream")


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + msgspec.json.encode(payload) + b"\n\n"


@get("/models")
async def models(request: Request[Any, Any, Any]) -> dict[str, Any]:
    container = container_of(request)
    created = int(time.time() - (time.monotonic() - container.started_at))
    transcriber = container.components["transcriber"]
    ids = list(getattr(transcriber, "names", lambda: [transcriber.model_name])())
    ids += [s.provider for s in container.synthesize.providers.synthesizers]
    ids += ["tts-1", "tts-1-hd", "whisper-1"]  # OpenAI's names, served by the models above
    return {
        "object": "list",
        "data": [
            {"id": i, "object": "model", "created": created, "owned_by": "voicepipe"} for i in ids
        ],
    }


def _openai_error(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    if isinstance(error, OpenAIError):
        status, message, param, code = error.status, error.message, error.param, error.code
    elif isinstance(error, VoicePipeError):
        param = "voice" if isinstance(error, UnknownVoice) else None
        status, message, code = error.status, error.message, error.code
        if isinstance(error, InvalidRequest):
            code = "invalid_request"
    elif isinstance(error, HTTPException):
        status, message, param, code = error.status_code, str(error.detail), None, "http_error"
    else:
        log.error("unhandled error", exc_info=error)
        status, message, param, code = 500, "internal error", None, "internal_error"
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    headers = None
    if status in (429, 503):
        headers = {"retry-after": str(getattr(error, "retry_after", 1))}
    return Response(body, status_code=status, headers=headers)


openai_router = Router(
    path="/v1",
    route_handlers=[speech, transcriptions, translations, models],
    # Named one by one: the app's handlers for these classes would otherwise win.
    exception_handlers={
        OpenAIError: _openai_error,
        VoicePipeError: _openai_error,
        HTTPException: _openai_error,
        Exception: _openai_error,
    },
)
