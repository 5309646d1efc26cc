"""REST routes of the v1 API: /api/tts, /api/stt, /api/token."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.datastructures import UploadFile
from litestar.response import Stream

from domain.errors import InvalidRequest
from entrypoints.bootstrap import Container
from entrypoints.errors import request_id
from entrypoints.security import principal_of
from entrypoints.v1.negotiation import Answer, choose_answer
from entrypoints.v1.rest_streaming import stream_speech
from entrypoints.v1.views import (
    SpeechView,
    TranscriptView,
    speech_audio,
    speech_view,
    transcript_view,
)
from entrypoints.v1.wire import SttBody, TtsBody, decode_audio, decode_body, read_form


def container_of(request: Request[Any, Any, Any]) -> Container:
    container: Container = request.app.state.container
    return container


@post("/api/tts", status_code=200)
async def text_to_speech(
    request: Request[Any, Any, Any],
) -> SpeechView | Stream | Response[bytes]:
    """JSON with base64 audio by default; the bytes themselves for `Accept: audio/...`.

    A streamed answer (`"stream": true`) is audio whatever `Accept` says, as it always was.
    """
    container = container_of(request)
    body = decode_body(await request.body(), TtsBody)
    if body.stream:
        return await stream_speech(container, principal_of(request), body, request_id())
    answer = choose_answer(request.headers.get("accept"), body.format)
    result = await container.speaking.speak(
        principal_of(request),
        body.text,
        pipeline_id=request_id(),
        transport="rest",
        voice=body.voice,
        audio_format=body.format,
        speed=body.speed,
        use_cache=body.use_cache,
        refresh_cache=body.refresh_cache,
    )
    if answer is Answer.AUDIO:
        return speech_audio(result)
    return speech_view(result, request_id())


@post("/api/stt", status_code=200)
async def speech_to_text(request: Request[Any, Any, Any]) -> TranscriptView:
    container = container_of(request)
    if request.content_type[0] == "multipart/form-data":
        audio, language = await _read_upload(request)
    else:
        body = decode_body(await request.body(), SttBody)
        audio = decode_audio(body.audio_base64, container.settings.max_audio_bytes)
        language = body.language
    result = await container.transcribing.transcribe_once(
        principal_of(request), audio, language, pipeline_id=request_id(), transport="rest"
    )
    return transcript_view(result, request_id())


async def _read_upload(request: Request[Any, Any, Any]) -> tuple[bytes, str | None]:
    form = await read_form(request)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidRequest("multipart upload needs a `file` field with the audio")
    language = form.get("language")
    if language is not None and not isinstance(language, str):
        raise InvalidRequest("`language` must be a text field")
    return await upload.read(), language or None


@post("/api/token", status_code=200)
async def issue_token(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """A one-time token for a browser WebSocket, which cannot send an Authorization header."""
    admission = container_of(request).admission
    token = admission.token(principal_of(request))
    return {
        "token": token,
        "expires_in": admission.token_ttl,
        "subprotocols": ["voicepipe", f"token.{token}"],
    }


ROUTES = [text_to_speech, speech_to_text, issue_token]
