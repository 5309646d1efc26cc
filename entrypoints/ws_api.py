"""WebSocket /ws/voice: the v1 JSON protocol plus streaming. An error frame never closes it.

v1 requests (`text`, `audio`) are answered in order. Streamed speech (`text` with `stream`,
`text_delta` / `flush`) runs beside the receive loop so `cancel` and audio frames are read
at once; its audio goes out as binary frames (or base64 chunks), one stream at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import msgspec
import pybase64
import structlog
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from opentelemetry.trace import Span, Status, StatusCode

from application.access import ANONYMOUS, CONNECTION_TTL, RateLimited
from application.stream_speech import SpeechStream, StreamChunk, StreamFinished, StreamStarted
from application.synthesize_speech import SpeakCommand
from domain.errors import InvalidRequest, VoicePipeError
from domain.token_bucket import TokenBucket
from entrypoints.bootstrap import Container
from entrypoints.http_api import container_of
from entrypoints.security import (
    chosen_subprotocol,
    origin_allowed,
    retain,
    socket_principal,
)
from entrypoints.tracing import current_trace_id
from entrypoints.views import speech_view, transcript_view
from entrypoints.wire import (
    AudioMessage,
    Cancel,
    ClientMessage,
    Flush,
    SttEnd,
    SttStart,
    SttStop,
    TextDelta,
    TextMessage,
    decode_audio,
    decode_message,
)
from entrypoints.ws_listening import Listening

log = structlog.get_logger(__name__)

SEND_TIMEOUT = 10.0  # a client that reads nothing for this long is dropped, not waited on
MESSAGES_PER_SECOND, MESSAGE_BURST = 50.0, 200.0
AUDIO_REALTIME_FACTOR, AUDIO_BURST_SECONDS = 10.0, 60.0  # of 16 kHz s16le audio


class Forbidden(VoicePipeError):
    code = "forbidden_origin"
    status = 403


class TooManyConnections(VoicePipeError):
    code = "too_many_connections"
    status = 503


class UnsupportedFrame(VoicePipeError):
    code = "unsupported_frame"


@websocket("/ws/voice")
async def voice_socket(socket: WebSocket[Any, Any, Any]) -> None:
    await VoiceConnection(socket, container_of(socket)).run()


class VoiceConnection:
    """One client's WebSocket: receive loop, streams in flight, and a serialized sender."""

    def __init__(self, socket: WebSocket[Any, Any, Any], container: Container) -> None:
        self.socket = socket
        self.container = container
        self.id = uuid.uuid4().hex[:12]
        self._send_lock = asyncio.Lock()
        self._speaking = asyncio.Lock()
        self.streams: dict[str, SpeechStream] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.listening: Listening | None = None
        self.clock = container.clock
        now = self.clock.monotonic()
        self._messages = TokenBucket(MESSAGES_PER_SECOND, MESSAGE_BURST, now)
        self._audio = TokenBucket(32_000 * AUDIO_REALTIME_FACTOR, 32_000 * AUDIO_BURST_SECONDS, now)
        self.closing = False
        self.principal = ANONYMOUS

    async def run(self) -> None:
        if not await self._admit():
            return
        structlog.contextvars.bind_contextvars(connection_id=self.id)
        log.info("websocket connected")
        live: set[VoiceConnection] = self.socket.app.state.connections
        live.add(self)
        keepalive = asyncio.get_running_loop().create_task(self._hold_slot())
        try:
            while True:
                event = await self._next_event()
                if event is None or event["type"] == "websocket.disconnect":
                    break
                await self._receive(event)
        except (WebSocketDisconnect, TimeoutError):
            pass
        finally:
            live.discard(self)
            keepalive.cancel()
            await self._close()
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
            if len(self.socket.app.state.connections) >= settings.ws_max_connections:
                raise TooManyConnections("the server has too many open connections; retry shortly")
            await self.container.access.connect(self.principal, self.id)
        except VoicePipeError as error:
            log.info("websocket refused", code=error.code)
            with contextlib.suppress(Exception):
                await self.send_json(_error(error.code, error.message, None, ""))
                await self.socket.close(code=1008, reason=error.code)
            return False
        return True

    async def _next_event(self) -> Any:
        """The next frame; None once idle past WS_IDLE_SECONDS with nothing in flight."""
        idle = self.container.settings.ws_idle_seconds
        while True:
            try:
                return await asyncio.wait_for(self.socket.receive(), idle)
            except TimeoutError:
                if self.tasks or self.streams or self.listening is not None:
                    continue  # the client is listening to us, not idle
                with contextlib.suppress(Exception):
                    await self.send_json(
                        _error("idle_timeout", f"no message for {idle:g} s; closing", None, "")
                    )
                    await self.socket.close(code=1000, reason="idle timeout")
                return None

    async def _hold_slot(self) -> None:
        """Refresh this connection's slot in the per-key count (slots of crashed servers expire)."""
        while True:
            await asyncio.sleep(CONNECTION_TTL / 2)
            with contextlib.suppress(VoicePipeError):
                await self.container.access.connect(self.principal, self.id)

    async def drain(self, seconds: float) -> None:
        """Server shutting down: say so, finish what is in flight (bounded), then close 1001."""
        self.closing = True
        try:
            await self.send_json({"type": "closing", "reason": "the server is shutting down"})
            async with asyncio.timeout(seconds):
                if self.listening is not None:
                    listening, self.listening = self.listening, None
                    await listening.stop(finish=True)  # the utterance in progress gets its final
                for stream in self.streams.values():
                    stream.finish()
                await asyncio.gather(*self.tasks, return_exceptions=True)
        except (TimeoutError, WebSocketDisconnect, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                await self.socket.close(code=1001, reason="server shutting down")

    async def _close(self) -> None:
        for stream in self.streams.values():
            stream.cancel()
        if self.listening is not None:
            await self.listening.stop(finish=False)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def send_json(self, message: dict[str, Any]) -> None:
        data = msgspec.json.encode(message).decode()
        async with self._send_lock:
            await asyncio.wait_for(self.socket.send_text(data), SEND_TIMEOUT)

    async def send_bytes(self, data: bytes) -> None:
        async with self._send_lock:
            await asyncio.wait_for(self.socket.send_bytes(data), SEND_TIMEOUT)

    async def send_error(self, error: VoicePipeError, message_id: str | None) -> None:
        await self.send_json(_error(error.code, error.message, message_id, _request_id()))

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
                data = event.get("bytes") or b""
                if not self._audio.take(len(data), self.clock.monotonic()):
                    raise RateLimited("audio is arriving faster than 10x real time; slow down")
                await self._audio_frame(data)
                return
            if not self._messages.take(1, self.clock.monotonic()):
                raise RateLimited("too many messages; at most 50 a second")
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
            await self.send_json(_error(error.code, error.message, message_id, request_id))
        except (WebSocketDisconnect, TimeoutError):
            raise
        except Exception as error:
            log.exception("unhandled error in websocket message")
            if span is not None:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, "internal_error"))
            await self.send_json(_error("internal_error", "internal error", message_id, request_id))
        finally:
            structlog.contextvars.unbind_contextvars("request_id")

    async def _dispatch(self, message: ClientMessage, request_id: str) -> None:
        if isinstance(message, TextMessage):
            if not 0.25 <= message.speed <= 4.0:
                raise InvalidRequest("speed must be between 0.25 and 4.0")
            if self.closing:
                raise InvalidRequest("the server is shutting down; reconnect shortly")
            if message.stream:
                await self._stream_whole(message, request_id)
            else:
                await self.send_json(await self._speak(message, request_id))
        elif isinstance(message, AudioMessage):
            await self.send_json(await self._transcribe(message, request_id))
        elif isinstance(message, TextDelta):
            (await self._stream_for(message, request_id)).add_text(message.text)
        elif isinstance(message, Flush | Cancel):
            stream = self.streams.get(message.id)
            if stream is None:
                raise InvalidRequest(f"no stream with id {message.id!r} is open")
            stream.finish() if isinstance(message, Flush) else stream.cancel()
        else:
            await self._listening(message, request_id)

    async def _audio_frame(self, data: bytes) -> None:
        if self.listening is None:
            raise UnsupportedFrame("binary frames carry audio only after an `stt_start` message")
        await self.listening.feed(data)

    async def _listening(self, message: SttStart | SttEnd | SttStop, request_id: str) -> None:
        if isinstance(message, SttStart):
            if self.listening is not None:
                raise InvalidRequest("an utterance stream is already open; send stt_stop first")
            self.listening = Listening.open(self, message, request_id)
            await self.send_json(
                {"type": "stt_started", "id": self.listening.stream_id, "sample_rate": 16_000}
            )
            return
        if self.listening is None:
            raise InvalidRequest("no utterance stream is open; send stt_start first")
        if isinstance(message, SttEnd):
            await self.listening.end_utterance()
        else:
            listening, self.listening = self.listening, None
            await listening.stop(finish=True)

    # ---- speech out -------------------------------------------------------------------

    async def _stream_whole(self, message: TextMessage, request_id: str) -> None:
        await self.container.access.charge_text(self.principal, len(message.text))
        stream_id = message.id or request_id
        stream = self.container.stream_speech.open(
            pipeline_id=request_id,
            transport="ws",
            voice=message.voice,
            use_cache=message.use_cache,
            text=message.text,
        )
        self._start_stream(stream_id, stream, message.binary)

    async def _stream_for(self, message: TextDelta, request_id: str) -> SpeechStream:
        await self.container.access.charge_text(self.principal, len(message.text))
        stream = self.streams.get(message.id)
        if stream is None:
            stream = self.container.stream_speech.open(
                pipeline_id=request_id,
                transport="ws",
                voice=message.voice,
                use_cache=message.use_cache,
            )
            self._start_stream(message.id, stream, message.binary)
        return stream

    def _start_stream(self, stream_id: str, stream: SpeechStream, binary: bool) -> None:
        if stream_id in self.streams:
            raise InvalidRequest(f"a stream with id {stream_id!r} is already open")
        self.streams[stream_id] = stream
        task = asyncio.get_running_loop().create_task(self._send_stream(stream_id, stream, binary))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send_stream(self, stream_id: str, stream: SpeechStream, binary: bool) -> None:
        try:
            async with self._speaking:  # binary frames carry no id: one stream at a time
                async for item in stream.items():
                    await self._send_item(stream_id, item, binary)
        except VoicePipeError as error:
            await self.send_error(error, stream_id)
        except (WebSocketDisconnect, TimeoutError, asyncio.CancelledError):
            stream.cancel()
        finally:
            self.streams.pop(stream_id, None)
            await self.container.stream_speech.close(stream)

    async def _send_item(self, stream_id: str, item: object, binary: bool) -> None:
        if isinstance(item, StreamChunk):
            if binary:
                await self.send_bytes(item.pcm)
            else:
                audio = pybase64.b64encode(item.pcm).decode()
                await self.send_json(
                    {"type": "audio_chunk", "id": stream_id, "seq": item.seq, "audio": audio}
                )
        elif isinstance(item, StreamStarted):
            await self.send_json(
                {
                    "type": "audio_start",
                    "id": stream_id,
                    "format": "pcm_s16le",
                    "sample_rate": item.sample_rate,
                    "channels": 1,
                    "transport": "binary" if binary else "base64",
                    "provider": item.provider,
                    "voice": item.voice,
                    "cached": item.cached,
                    "fallback": item.fallback,
                }
            )
        elif isinstance(item, StreamFinished):
            await self.send_json(
                {"type": "audio_end", "id": stream_id, **msgspec.structs.asdict(item)}
            )

    async def _speak(self, message: TextMessage, request_id: str) -> dict[str, Any]:
        await self.container.access.charge_text(self.principal, len(message.text))
        retain(self.container.settings, "tts", message.text)
        command = SpeakCommand(
            text=message.text,
            voice=message.voice,
            audio_format=message.format,
            use_cache=message.use_cache,
            refresh_cache=message.refresh_cache,
            speed=message.speed,
        )
        result = await self.container.synthesize.execute(
            command, pipeline_id=request_id, transport="ws"
        )
        view = msgspec.structs.asdict(speech_view(result, request_id))
        view["audio"] = view.pop("audio_base64")
        return {"type": "audio", "id": message.id, **view}

    async def _transcribe(self, message: AudioMessage, request_id: str) -> dict[str, Any]:
        audio = decode_audio(message.audio, self.container.settings.max_audio_bytes)
        access = self.container.access
        await access.check_audio(self.principal)
        result = await self.container.transcribe.execute(
            audio, message.language, pipeline_id=request_id, transport="ws"
        )
        await access.charge_audio(self.principal, result.transcript.duration)
        retain(self.container.settings, "stt", result.transcript.text)
        view = msgspec.structs.asdict(transcript_view(result, request_id))
        return {"type": "transcript", "id": message.id, **view}


def _request_id() -> str:
    return str(structlog.contextvars.get_contextvars().get("request_id", ""))


def _error(code: str, message: str, message_id: str | None, request_id: str) -> dict[str, Any]:
    return {
        "type": "error",
        "code": code,
        "message": message,
        "id": message_id,
        "request_id": request_id,
        "trace_id": current_trace_id(),
    }
