"""POST and WebSocket /v1/speak, errors in Deepgram's REST shape. The POST's audio comes in
one response, through the speaking use case (cache, provider fallback, the key's characters)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Request, Response, Router, post

from domain.wav import wave_header
from entrypoints.bootstrap import Container
from entrypoints.deepgram.query import Query
from entrypoints.errors import EXCEPTION_HANDLERS, request_id
from entrypoints.security import principal_of
from entrypoints.speak import options
from entrypoints.speak.socket import speak_socket
from entrypoints.v1.wire import decode_body


class SpeakBody(msgspec.Struct, frozen=True):
    text: str


@post("/speak", status_code=200)
async def speak_text(request: Request[Any, Any, Any]) -> Response[bytes]:
    container: Container = request.app.state.container
    query = Query(request.query_params.multi_items())
    languages = container.catalog.voice_languages()  # Aura's -es, -de, ... models
    asked = options.read(query, container.speech.voices(), rest=True, languages=languages)
    body = decode_body(await request.body(), SpeakBody)
    raw = options.RAW.get(asked.encoding)
    result = await container.speaking.speak(
        principal_of(request),
        body.text,
        pipeline_id=request_id(),
        transport="deepgram-speak",
        voice=asked.voice,
        audio_format="pcm" if raw else options.ENCODED[asked.encoding][0].value,
        speed=asked.speed,
    )
    audio = result.audio
    if raw is None:
        data, media_type = audio.data, options.ENCODED[asked.encoding][2]
    else:
        out = container.speaking.converter.open_output(raw, audio.sample_rate, asked.sample_rate)
        data = await asyncio.to_thread(lambda: out.convert(audio.data) + out.flush())  # seconds
        media_type = f"{options.RAW_TYPES[raw]};rate={asked.sample_rate}"
        if asked.container == "wav":
            data, media_type = wave_header(raw, asked.sample_rate, 1, len(data)) + data, "audio/wav"
    headers = {
        "dg-request-id": request_id(),
        "dg-model-name": asked.model,
        "dg-model-uuid": options.model_facts(audio.voice)["model_uuid"],
        "dg-char-count": str(len(result.text)),  # what the key was charged
    }
    return Response(data, media_type=media_type, headers=headers)


speak_router = Router(
    path="/v1",
    route_handlers=[speak_text, speak_socket],
    exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
)
