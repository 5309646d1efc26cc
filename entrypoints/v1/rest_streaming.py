"""POST /api/tts with `"stream": true`: a chunked response that starts with the first piece."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar.response import Stream
from litestar.response.base import ASGIResponse

from application.access import Principal
from application.speaking import SpeakingSession
from domain.errors import UnsupportedFormat
from domain.speech import AudioFormat
from entrypoints.bootstrap import Container
from entrypoints.v1.wire import TtsBody

STREAM_FORMATS = {"pcm": "audio/L16", "wav": "audio/wav"}


class AudioStream(Stream):
    """A Stream whose own media type wins: Litestar's Stream lets the route's (JSON) win."""

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        kwargs["media_type"] = self.media_type
        return super().to_asgi_response(*args, **kwargs)


async def stream_speech(
    container: Container, principal: Principal, body: TtsBody, request_id: str
) -> Stream:
    if body.format not in STREAM_FORMATS:
        raise UnsupportedFormat("streamed audio is pcm (raw s16le) or wav; use one of: pcm, wav")
    session = await container.speaking.open(
        principal,
        pipeline_id=request_id,
        transport="rest",
        voice=body.voice,
        use_cache=body.use_cache,
        speed=body.speed,
        text=body.text,
    )
    try:
        started = await session.started()  # errors before the first byte still get a 4xx/5xx
    except BaseException:
        await session.close()
        raise
    headers = {
        "x-sample-rate": str(started.sample_rate),
        "x-channels": "1",
        "x-audio-format": "pcm_s16le",
        "x-provider": started.provider,
        "x-voice": started.voice,
        "x-cached": str(started.cached).lower(),
        "x-fallback": str(started.fallback).lower(),
    }
    audio = session.audio(AudioFormat.parse(body.format))
    return AudioStream(
        _body(session, audio), media_type=STREAM_FORMATS[body.format], headers=headers
    )


async def _body(session: SpeakingSession, audio: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for data in audio:
            yield data
    finally:
        session.cancel()  # the client went away: stop synthesizing
        await session.close()
