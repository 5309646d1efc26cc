"""WebSocket /ws/voice: the v1 JSON protocol plus streaming, as a dialect of the connection
core. Frames decode to the typed messages of `wire`; speech out lives in socket_speech, audio
in in socket_listening. An error frame never closes the connection."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import msgspec
import structlog
from litestar import WebSocket, websocket
from opentelemetry.trace import Status, StatusCode

from application.access import ANONYMOUS, Principal
from application.connections import Connection
from domain.errors import InvalidRequest, VoicePipeError
from entrypoints.bootstrap import Container
from entrypoints.dialect import BaseDialect
from entrypoints.v1.frames import Closing, ServerFrame, error_frame, transcript_reply
from entrypoints.v1.socket_listening import ListeningIn
from entrypoints.v1.socket_speech import SpeechOut
from entrypoints.v1.wire import (
    AudioMessage,
    Cancel,
    ClientMessage,
    Flush,
    TextDelta,
    TextMessage,
    decode_audio,
    decode_message,
)
from entrypoints.websocket import Frame, chosen, serve_socket

log = structlog.get_logger(__name__)

_encoder = msgspec.json.Encoder()


class AudioFrame(msgspec.Struct, frozen=True):
    """A binary frame: audio for the utterance stream."""

    data: bytes


class Undecodable(msgspec.Struct, frozen=True):
    """A text frame that is no message: its error is raised inside its own span."""

    error: VoicePipeError


Command = ClientMessage | AudioFrame | Undecodable


@websocket("/ws/voice")
async def voice_socket(socket: WebSocket[Any, Any, Any]) -> None:
    container: Container = socket.app.state.container
    await serve_socket(
        socket, VoiceDialect(container), subprotocol=chosen(socket.scope, "voicepipe")
    )


class VoiceDialect(BaseDialect[Frame]):
    """One client's v1 connection: its speech streams and its utterance stream."""

    name = "v1"

    def __init__(self, container: Container) -> None:
        super().__init__(container)
        self.speech = SpeechOut(container.speaking, self.reply, self.send)
        self.listening = ListeningIn(
            container.listen, self._principal, self.reply, container.catalog
        )

    @property
    def busy(self) -> bool:
        return self.speech.streams.busy

    def decode(self, frame: Frame) -> Command:
        if isinstance(frame, bytes):
            return AudioFrame(frame)
        try:
            return decode_message(frame)
        except VoicePipeError as error:
            return Undecodable(error)

    def render_error(self, error: VoicePipeError, command: Command | None) -> Frame:
        return _encoder.encode(error_frame(error, getattr(command, "id", None))).decode()

    def paced(self, command: object) -> bool:
        """Audio is paced in seconds by the listening session; stray frames are messages."""
        return isinstance(command, AudioFrame) and self.listening.session is not None

    async def open(self, connection: Connection[Frame]) -> None:
        await super().open(connection)
        self.speech.streams.principal = connection.principal

    async def reply(self, frame: ServerFrame) -> None:
        await self.send(_encoder.encode(frame).decode())

    async def handle(self, command: object) -> None:
        assert isinstance(command, Command)
        if isinstance(command, AudioFrame):  # dozens a second: not traced one by one
            await self.listening.audio(command.data)
            return
        request_id = uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        bad = isinstance(command, Undecodable)
        kind = "message" if bad else str(command.__struct_config__.tag)
        tracer = self.container.telemetry.tracer
        with tracer.start_as_current_span(f"WS {kind}", record_exception=False) as span:
            span.set_attributes(
                {"voicepipe.message.type": kind, "voicepipe.request_id": request_id}
            )
            try:
                if isinstance(command, Undecodable):
                    raise command.error
                await self._dispatch(command, request_id)
            except VoicePipeError as error:
                span.set_attribute("error.type", error.code)
                raise
            except Exception as error:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, "internal_error"))
                raise
            finally:
                structlog.contextvars.unbind_contextvars("request_id")

    async def _dispatch(self, message: ClientMessage, request_id: str) -> None:
        if isinstance(message, TextMessage):
            if self.connection is not None and self.connection.closing:
                raise InvalidRequest("the server is shutting down; reconnect shortly")
            if message.stream:
                await self.speech.stream_whole(message, request_id)
            else:
                await self.reply(await self.speech.reply(message, request_id))
        elif isinstance(message, AudioMessage):
            await self._transcribe(message, request_id)
        elif isinstance(message, TextDelta):
            await self.speech.delta(message, request_id)
        elif isinstance(message, Flush | Cancel):
            self.speech.end(message)
        else:
            await self.listening.control(message, request_id)

    async def _transcribe(self, message: AudioMessage, request_id: str) -> None:
        assert self.connection is not None
        audio = decode_audio(message.audio, self.container.settings.max_audio_bytes)
        result = await self.container.transcribing.transcribe_once(
            self.connection.principal,
            audio,
            message.language,
            pipeline_id=request_id,
            transport="ws",
        )
        await self.reply(transcript_reply(result, message.id, request_id))

    def _principal(self) -> Principal:
        return self.connection.principal if self.connection is not None else ANONYMOUS

    async def drain(self, seconds: float) -> None:
        """Say so; the utterance in progress gets its final; streams finish, or end cancelled
        (still with their `audio_end`) when the drain time runs short."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds - 1.0
        await self.reply(Closing("the server is shutting down"))
        await self.listening.stop()
        await self.speech.streams.drain(deadline - loop.time())

    async def close(self) -> None:
        await self.speech.streams.close()
        await self.listening.drop()
