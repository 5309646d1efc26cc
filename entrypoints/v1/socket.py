"""WebSocket /ws/voice: the v1 JSON protocol plus streaming. An error frame never closes it.

The transport admits the client, decodes its frames, calls the sessions (speech out in
socket_speech, a listening session for audio in) and sends their events as v1 frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import msgspec
import structlog
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from opentelemetry.trace import Span, Status, StatusCode

from application.access import ANONYMOUS, RateLimited
from domain.errors import InvalidRequest, VoicePipeError
from domain.token_bucket import TokenBucket
from entrypoints.bootstrap import Container
from entrypoints.security import (
    Forbidden,
    TooManyConnections,
    chosen_subprotocol,
    hold_slot,
    origin_allowed,
    socket_principal,
)
from entrypoints.v1.socket_listening import ListeningIn
from entrypoints.v1.socket_speech import SpeechOut
from entrypoints.v1.views import (
    Closing,
    ErrorFrame,
    ServerFrame,
    error_frame,
    transcript_reply,
)
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

log = structlog.get_logger(__name__)

SEND_TIMEOUT = 10.0  # a client that reads nothing for this long is dropped, not waited on
MESSAGES_PER_SECOND, MESSAGE_BURST = 50.0, 200.0
_encoder = msgspec.json.Encoder()


@websocket("/ws/voice")
async def voice_socket(socket: WebSocket[Any, Any, Any]) -> None:
    container: Container = socket.app.state.container
    await VoiceConnection(socket, container).run()


class VoiceConnection:
    """One client's WebSocket: receive loop, its sessions, and a serialized sender."""

    def __init__(self, socket: WebSocket[Any, Any, Any], container: Container) -> None:
        self.socket = socket
        self.container = container
        self.id = uuid.uuid4().hex[:12]
        self.live: set[VoiceConnection] = socket.app.state.connections
        self._send_lock = asyncio.Lock()
        self.clock = container.clock
        self._messages = TokenBucket(MESSAGES_PER_SECOND, MESSAGE_BURST, self.clock.monotonic())
        self.principal = ANONYMOUS
        self.speech = SpeechOut(container.speaking, ANONYMOUS, self.send, self.send_bytes)
        self.listening = ListeningIn(
            container.listen,
            lambda: container.access.audio_allowance(self.principal),
            self.send,
        )
        self.closing = False

    async def run(self) -> None:
        if not await self._admit():
            return
        structlog.contextvars.bind_contextvars(connection_id=self.id)
        log.info("websocket connected")
        keepalive = asyncio.get_running_loop().create_task(
            hold_slot(self.container.access, self.principal, self.id)
        )
        try:
            while (event := await self._next_event()) is not None:
                if event["type"] == "websocket.disconnect":
                    break
                await self._receive(event)
        except (WebSocketDisconnect, TimeoutError):
            pass
        finally:
            self.live.discard(self)
            keepalive.cancel()
            await self.speech.cancel_all()
            await self.listening.drop()
            await self.container.access.disconnect(self.principal, self.id)
            log.info("websocket closed")
            structlog.contextvars.unbind_contextvars("connection_id")

    async def _admit(self) -> bool:
        """The handshake: Origin, key or one-time token, connection limits. Refusals close 1008."""
        scope, settings = self.socket.scope, self.container.settings
        await self.socket.accept(subprotocols=chosen_subprotocol(scope))
        try:
            if not origin_allowed(scope, settings):
                raise Forbidden(
                    "this page's origin may not open WebSockets here (WS_ALLOWED_ORIGINS)"
                )
            self.principal = await socket_principal(self.container.access, scope)
            self.speech.principal = self.principal
            if len(self.live) >= settings.ws_max_connections:
                raise TooManyConnections("the server has too many open connections; retry shortly")
            self.live.add(self)  # the slot is taken before the next await: no check-then-add race
            await self.container.access.connect(self.principal, self.id)
        except VoicePipeError as error:
            self.live.discard(self)
            log.info("websocket refused", code=error.code)
            with contextlib.suppress(Exception):
                await self.send(ErrorFrame(error.code, error.message))
                await self.socket.close(code=1008, reason=error.code)
            return False
        return True

    async def _next_event(self) -> Any:
        """The next frame; None once idle past WS_IDLE_SECONDS with no speech going out.

        An open listening session that gets no audio is idle too.
        """
        idle = self.container.settings.ws_idle_seconds
        while True:
            try:
                return await asyncio.wait_for(self.socket.receive(), idle)
            except TimeoutError:
                if self.speech.busy:
                    continue  # the client is listening to us, not idle
                with contextlib.suppress(Exception):
                    await self.send(
                        ErrorFrame("idle_timeout", f"no message for {idle:g} s; closing")
                    )
                    await self.socket.close(code=1000, reason="idle timeout")
                return None

    async def drain(self, seconds: float) -> None:
        """Server shutting down: say so, finish what is in flight (bounded), then close 1001."""
        self.closing = True
        try:
            await self.send(Closing("the server is shutting down"))
            async with asyncio.timeout(seconds):
                await self.listening.stop()  # the utterance in progress gets its final
                self.speech.finish_all()
                await asyncio.gather(*self.speech.tasks, return_exceptions=True)
        except (TimeoutError, WebSocketDisconnect, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                await self.socket.close(code=1001, reason="server shutting down")

    async def send(self, frame: ServerFrame) -> None:
        data = _encoder.encode(frame).decode()
        async with self._send_lock:
            await asyncio.wait_for(self.socket.send_text(data), SEND_TIMEOUT)

    async def send_bytes(self, data: bytes) -> None:
        async with self._send_lock:
            await asyncio.wait_for(self.socket.send_bytes(data), SEND_TIMEOUT)

    async def _receive(self, event: Any) -> None:
        if event.get("text") is None:  # audio frames: dozens a second, not traced one by one
            await self._handle(event, None)
            return
        tracer = self.container.telemetry.tracer
        with tracer.start_as_current_span("WS message", record_exception=False) as span:
            await self._handle(event, span)

    async def _handle(self, event: Any, span: Span | None) -> None:
        request_id = uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        message_id: str | None = None
        try:
            text = event.get("text")
            if text is None:
                await self._audio_frame(event.get("bytes") or b"")
                return
            self._pace()
            await self.container.access.admit_request(self.principal)
            message = decode_message(text)
            message_id = getattr(message, "id", None)
            if span is not None:
                kind = message.__struct_config__.tag
                span.update_name(f"WS {kind}")
                span.set_attributes(
                    {"voicepipe.message.type": str(kind), "voicepipe.request_id": request_id}
                )
            await self._dispatch(message, request_id)
        except VoicePipeError as error:
            if span is not None:
                span.set_attribute("error.type", error.code)
            await self.send(error_frame(error, message_id))
        except (WebSocketDisconnect, TimeoutError):
            raise
        except Exception as error:
            log.exception("unhandled error in websocket message")
            if span is not None:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, "internal_error"))
            await self.send(error_frame(error, message_id))
        finally:
            structlog.contextvars.unbind_contextvars("request_id")

    def _pace(self) -> None:
        if not self._messages.take(1, self.clock.monotonic()):
            raise RateLimited("too many messages; at most 50 a second")

    async def _dispatch(self, message: ClientMessage, request_id: str) -> None:
        if isinstance(message, TextMessage):
            if self.closing:
                raise InvalidRequest("the server is shutting down; reconnect shortly")
            if message.stream:
                await self.speech.stream_whole(message, request_id)
            else:
                await self.send(await self.speech.reply(message, request_id))
        elif isinstance(message, AudioMessage):
            await self._transcribe(message, request_id)
        elif isinstance(message, TextDelta):
            await self.speech.delta(message, request_id)
        elif isinstance(message, Flush | Cancel):
            self.speech.end(message)
        else:
            await self.listening.control(message, request_id)

    async def _audio_frame(self, data: bytes) -> None:
        """Audio is paced in seconds by the listening session; stray frames count as messages."""
        if self.listening.session is None:
            self._pace()
        await self.listening.audio(data)

    async def _transcribe(self, message: AudioMessage, request_id: str) -> None:
        audio = decode_audio(message.audio, self.container.settings.max_audio_bytes)
        result = await self.container.transcribing.transcribe_once(
            self.principal, audio, message.language, pipeline_id=request_id, transport="ws"
        )
        await self.send(transcript_reply(result, message.id, request_id))
