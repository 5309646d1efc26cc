"""POST /v1/audio/speech: OpenAI's text-to-speech route on the speaking use case."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import structlog
from litestar import Request, Response, post
from litestar.response import Stream

from application.speaking import SpeakingSession
from domain.speech import AudioFormat
from entrypoints.bootstrap import Container
from entrypoints.openai.shapes import OpenAIError
from entrypoints.security import principal_of
from entrypoints.v1.views import CONTENT_TYPES
from entrypoints.v1.wire import decode_body

OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse",
    "marin", "cedar",
)  # fmt: skip
SPEECH_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
PCM_RATE = 24_000  # OpenAI's pcm is 24 kHz s16le
# Formats whose pieces can be sent one after another: mp3 and ADTS AAC are frame streams and
# Ogg allows chained streams; FLAC's header covers the whole file, so it goes out in one piece.
STREAMABLE = ("wav", "pcm", "mp3", "aac", "opus")


class SpeechBody(msgspec.Struct, frozen=True):
    input: str
    model: str = "tts-1"
    voice: str = "alloy"
    response_format: str = "mp3"
    speed: float = 1.0


def voice_of(requested: str, voices: dict[str, list[str]]) -> str | None:
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
    container: Container = request.app.state.container
    body = decode_body(await request.body(), SpeechBody)
    if body.response_format not in SPEECH_FORMATS:
        raise OpenAIError(f"response_format must be one of {', '.join(SPEECH_FORMATS)}",
                          param="response_format", code="invalid_value")  # fmt: skip
    voice = voice_of(body.voice, container.speech.voices())
    request_id = str(structlog.contextvars.get_contextvars().get("request_id", ""))
    principal = principal_of(request)
    if body.response_format in STREAMABLE:
        session = await container.speaking.open(
            principal,
            pipeline_id=request_id,
            transport="openai",
            voice=voice,
            speed=body.speed,
            text=body.input,
        )
        return await _streamed(session, body.response_format)
    result = await container.speaking.speak(
        principal,
        body.input,
        pipeline_id=request_id,
        transport="openai",
        voice=voice,
        audio_format=body.response_format,
        speed=body.speed,
    )
    headers = {"x-provider": result.audio.voice.provider, "x-voice": result.audio.voice.name}
    media_type = CONTENT_TYPES[AudioFormat.parse(body.response_format)]
    return Response(result.audio.data, media_type=media_type, headers=headers)


async def _streamed(session: SpeakingSession, response_format: str) -> Stream:
    """Audio goes out as each sentence is synthesized: raw for wav/pcm, encoded piece by piece."""
    try:
        started = await session.started()
    except BaseException:
        await session.close()
        raise
    audio_format = AudioFormat.parse(response_format)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            rate = PCM_RATE if audio_format is AudioFormat.PCM else None  # OpenAI's pcm: 24 kHz
            async for data in session.audio(audio_format, rate):
                yield data
        finally:
            session.cancel()
            await session.close()

    headers = {"x-provider": started.provider, "x-voice": started.voice}
    return Stream(chunks(), media_type=CONTENT_TYPES[audio_format], headers=headers)
