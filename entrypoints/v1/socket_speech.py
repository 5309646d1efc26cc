"""Speech out on the WebSocket: one-shot `audio` replies, and the connection's speech streams
(the application's SpeechStreams) as v1 frames: audio as binary frames or base64 chunks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pybase64

from application.speaking import Speaking
from application.speech_streams import Say, SpeechStreams
from application.stream_speech import StreamChunk, StreamFinished, StreamItem, StreamStarted
from domain.errors import VoicePipeError
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
    def __init__(self, speaking: Speaking, send: SendFrame, send_bytes: SendBytes) -> None:
        self.speaking = speaking
        self.send = send
        self.send_bytes = send_bytes
        self.streams = SpeechStreams(speaking, "ws", self._failed)

    async def reply(self, message: TextMessage, request_id: str) -> AudioReply:
        result = await self.speaking.speak(
            self.streams.principal,
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
        await self.streams.start(
            stream_id,
            self._say(stream_id, message.binary),
            pipeline_id=request_id,
            text=message.text,
            voice=message.voice,
            use_cache=message.use_cache,
            speed=message.speed,
        )

    async def delta(self, message: TextDelta, request_id: str) -> None:
        """Text for the stream `id`, opened by its first delta."""
        await self.streams.write(
            message.id,
            message.text,
            self._say(message.id, message.binary),
            pipeline_id=request_id,
            voice=message.voice,
            use_cache=message.use_cache,
        )

    def end(self, message: Flush | Cancel) -> None:
        if isinstance(message, Flush):
            self.streams.finish(message.id)
        else:
            self.streams.cancel(message.id)

    async def _failed(self, stream_id: str, error: VoicePipeError) -> None:
        await self.send(error_frame(error, stream_id))

    def _say(self, stream_id: str, binary: bool) -> Say:
        async def say(item: StreamItem) -> None:
            await self._send_item(stream_id, item, binary)

        return say

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
