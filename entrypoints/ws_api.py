"""WebSocket /ws/voice: the v1 JSON protocol. An error frame never closes the connection."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import structlog
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from application.synthesize_speech import SpeakCommand
from domain.errors import VoicePipeError
from entrypoints.bootstrap import Container
from entrypoints.http_api import container_of
from entrypoints.views import speech_view, transcript_view
from entrypoints.wire import AudioMessage, TextMessage, decode_audio, decode_message

log = structlog.get_logger(__name__)


class UnsupportedFrame(VoicePipeError):
    code = "unsupported_frame"


@websocket("/ws/voice")
async def voice_socket(socket: WebSocket[Any, Any, Any]) -> None:
    container = container_of(socket)
    await socket.accept()
    connection_id = uuid.uuid4().hex[:12]
    structlog.contextvars.bind_contextvars(connection_id=connection_id)
    log.info("websocket connected")
    try:
        while True:
            event = await socket.receive()
            if event["type"] == "websocket.disconnect":
                break
            reply = await _handle(event, container)
            await socket.send_text(msgspec.json.encode(reply).decode())
    except WebSocketDisconnect:
        pass
    finally:
        log.info("websocket closed")
        structlog.contextvars.unbind_contextvars("connection_id")


async def _handle(event: Any, container: Container) -> dict[str, Any]:
    request_id = uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(request_id=request_id)
    message_id: str | None = None
    try:
        text = event.get("text")
        if text is None:
            raise UnsupportedFrame("binary frames are not part of this protocol; send JSON text")
        message = decode_message(text)
        message_id = message.id
        if isinstance(message, TextMessage):
            return await _speak(message, container, request_id)
        return await _transcribe(message, container, request_id)
    except VoicePipeError as error:
        return _error(error.code, error.message, message_id, request_id)
    except Exception:
        log.exception("unhandled error in websocket message")
        return _error("internal_error", "internal error", message_id, request_id)
    finally:
        structlog.contextvars.unbind_contextvars("request_id")


async def _speak(message: TextMessage, container: Container, request_id: str) -> dict[str, Any]:
    command = SpeakCommand(
        text=message.text,
        voice=message.voice,
        audio_format=message.format,
        use_cache=message.use_cache,
        refresh_cache=message.refresh_cache,
    )
    result = await container.synthesize.execute(command, pipeline_id=request_id, transport="ws")
    view = msgspec.structs.asdict(speech_view(result, request_id))
    view["audio"] = view.pop("audio_base64")
    return {"type": "audio", "id": message.id, **view}


async def _transcribe(
    message: AudioMessage, container: Container, request_id: str
) -> dict[str, Any]:
    audio = decode_audio(message.audio, container.settings.max_audio_bytes)
    result = await container.transcribe.execute(
        audio, message.language, pipeline_id=request_id, transport="ws"
    )
    view = msgspec.structs.asdict(transcript_view(result, request_id))
    return {"type": "transcript", "id": message.id, **view}


def _error(code: str, message: str, message_id: str | None, request_id: str) -> dict[str, Any]:
    return {
        "type": "error",
        "code": code,
        "message": message,
        "id": message_id,
        "request_id": request_id,
    }
