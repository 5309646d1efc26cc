"""Speech out on the WebSocket: one-shot `audio` replies and streamed speech.

Streams run beside the receive loop so `cancel` is read at once; their audio goes out as
binary frames (or base64 chunks), one stream at a time since binary frames carry no id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pybase64

from application.access import Principal
from application.speaking import Speaking, SpeakingSession
from application.stream_speech import StreamChunk, StreamFinished, StreamItem, StreamStarted
from domain.errors import InvalidRequest, VoicePipeError
from entrypoints.v1.frames import (
    AudioChunk,
    AudioEnd,
    AudioReply,
    AudioStart,
    ServerFrame,
    audio_reply,
    error_frame,
)
from entrypoints.v1.wire import Cancel, Flush, TextDelta, TextMessage

SendFrame = Callable[[ServerFrame], Awaitable[None]]
SendBytes = Callable[[bytes], Awaitable[None]]


class SpeechOut:
    """The connection's speech: its open streams and their sending tasks."""

    def __init__(
        self, speaking: Speaking, principal: Principal, send: SendFrame, send_bytes: SendBytes
    ) -> None:
        self.speaking = speaking
        self.principal = principal
        self.send = send
        self.send_bytes = send_bytes
        self.streams: dict[str, SpeakingSession] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._one_at_a_time = asyncio.Lock()

    @property
    def busy(self) -> bool:
        return bool(self.tasks or self.streams)

    async def reply(self, message: TextMessage, request_id: str) -> AudioReply:
        result = await self.speaking.speak(
            self.principal,
            message.text,
            pipeline_id=request_id,
            transport="ws",
            voice=message.voice,
            audio_format=message.format,
            speed=message.speed,
            use_cache=message.use_cache,
            refresh_cache=message.refresh_cache,
        )
        return audio_reply(result, message.id, request_id)

    async def stream_whole(self, message: TextMessage, request_id: str) -> None:
        stream_id = message.id or request_id
        self._check_free(stream_id)
        session = await self.speaking.open(
            self.principal,
            pipeline_id=request_id,
            transport="ws",
            voice=message.voice,
            use_cache=message.use_cache,
            speed=message.speed,
            text=message.text,
        )
        self._start(stream_id, session, message.binary)

    async def delta(self, message: TextDelta, request_id: str) -> None:
        """Text for the stream `id`, opened by its first delta."""
        session = self.streams.get(message.id)
        if session is None:
            session = await self.speaking.open(
                self.principal,
                pipeline_id=request_id,
                transport="ws",
                voice=message.voice,
                use_cache=message.use_cache,
            )
            try:
                await session.add_text(message.text)
            except BaseException:
                session.cancel()
                await session.close()
                raise
            self._start(message.id, session, message.binary)
            return
        await session.add_text(message.text)

    def end(self, message: Flush | Cancel) -> None:
        session = self.streams.get(message.id)
        if session is None:
            raise InvalidRequest(f"no stream with id {message.id!r} is open")
        session.finish() if isinstance(message, Flush) else session.cancel()

    def finish_all(self) -> None:
        for session in self.streams.values():
            session.finish()

    def cancel_streams(self) -> None:
        """Stop every stream after its piece in synthesis; each still ends with `audio_end`."""
        for session in self.streams.values():
            session.cancel()

    async def cancel_all(self) -> None:
        self.cancel_streams()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def _check_free(self, stream_id: str) -> None:
        if stream_id in self.streams:
            raise InvalidRequest(f"a stream with id {stream_id!r} is already open")

    def _start(self, stream_id: str, session: SpeakingSession, binary: bool) -> None:
        self._check_free(stream_id)
        self.streams[stream_id] = session
        task = asyncio.get_running_loop().create_task(self._send_stream(stream_id, session, binary))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send_stream(self, stream_id: str, session: SpeakingSession, binary: bool) -> None:
        try:
            async with self._one_at_a_time:
                async for item in session.items():
                    await self._send_item(stream_id, item, binary)
        except VoicePipeError as error:
            await self.send(error_frame(error, stream_id))
        except (ConnectionError, TimeoutError, asyncio.CancelledError):
            session.cancel()
        finally:
            self.streams.pop(stream_id, None)
            await session.close()

    async def _send_item(self, stream_id: str, item: StreamItem, binary: bool) -> None:
        if isinstance(item, StreamChunk):
            if binary:
                await self.send_bytes(item.pcm)
            else:
                audio = pybase64.b64encode(item.pcm).decode()
                await self.send(AudioChunk(stream_id, item.seq, audio))
        elif isinstance(item, StreamStarted):
            transport = "binary" if binary else "base64"
            await self.send(
                AudioStart(
                    stream_id,
                    item.sample_rate,
                    transport,
                    item.provider,
                    item.voice,
                    item.cached,
                    item.fallback,
                )
            )
        elif isinstance(item, StreamFinished):
            await self.send(
                AudioEnd(
                    stream_id,
                    item.duration,
                    item.latency_ms,
                    item.first_chunk_ms,
                    item.cached,
                    item.cancelled,
                    item.chunks,
                    item.sentiment,
                    item.text,
                )
            )
