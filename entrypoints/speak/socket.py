"""WebSocket /v1/speak: Deepgram's streamed text to speech, a dialect of the connection core
over its speech streams. `Speak` writes to the open stream (opened by its first text), `Flush`
finishes it, `Clear` cancels every stream (unspoken text is not charged), `Close` speaks the
rest and closes. A refused message gets a `Warning`; a refused handshake, an `Error`."""

from __future__ import annotations

import functools
import uuid
from typing import Any

import msgspec
from litestar import WebSocket, websocket

from application.client_audio import ClientAudio
from application.connections import Closed, Connection, IdleTimeout
from application.speech_streams import Say, SpeechStreams
from application.stream_speech import StreamItem
from domain.errors import EmptyText, InvalidRequest, VoicePipeError
from entrypoints.bootstrap import Container
from entrypoints.deepgram.query import Query
from entrypoints.deepgram.shapes import error_message
from entrypoints.dialect import BaseDialect, Handlers
from entrypoints.speak import options
from entrypoints.websocket import Frame, chosen, serve_socket

_encoder = msgspec.json.Encoder()


class Speak(msgspec.Struct, frozen=True, tag=True):
    text: str


class Flush(msgspec.Struct, frozen=True, tag=True): ...


class Clear(msgspec.Struct, frozen=True, tag=True): ...


class Close(msgspec.Struct, frozen=True, tag=True): ...


Command = Speak | Flush | Clear | Close
_decoder = msgspec.json.Decoder(Command)


def max_frame_bytes(max_text_chars: int) -> int:
    return 2 * (6 * max_text_chars + 1024)  # twice the longest text, escaped: still coded


@websocket("/speak")
async def speak_socket(socket: WebSocket[Any, Any, Any]) -> None:
    dialect = SpeakDialect(socket.app.state.container, Query(socket.query_params.multi_items()))
    await serve_socket(socket, dialect, subprotocol=chosen(socket.scope, "token", "bearer"),
                       headers={"dg-request-id": dialect.request_id})  # fmt: skip


HANDLERS = Handlers()


class SpeakDialect(BaseDialect[Frame]):
    """Streams speak in order; `Flushed` and `Cleared` come after the audio before them, and
    their `sequence_id` counts the Flush and Clear messages from 0."""

    name = "deepgram-speak"
    HANDLERS = HANDLERS

    def __init__(self, container: Container, query: Query) -> None:
        super().__init__(container)
        self.request_id, self.query = str(uuid.uuid4()), query
        self.asked: options.SpeakOptions | None = None  # read at open: refusals get an Error
        failed = lambda _, error: self.send(self.render_error(error, None))  # noqa: E731
        self.streams = SpeechStreams(container.speaking, "deepgram-speak", failed)
        self.current: str | None = None  # the stream `Speak` writes to
        self.sequence = self.opened = 0

    @property
    def busy(self) -> bool:
        return self.streams.busy

    def decode(self, frame: Frame) -> Command:
        try:
            if isinstance(frame, bytes):
                raise msgspec.DecodeError  # text only: audio goes one way here
            command: Command = _decoder.decode(frame)
        except (msgspec.DecodeError, UnicodeError, RecursionError):
            raise InvalidRequest("a message is Speak (with text), Flush, Clear or Close") from None
        return command

    def render_error(self, error: VoicePipeError, command: Command | None) -> Frame:
        """A `Warning` where the connection goes on; an `Error` before a close."""
        if self.asked is None or isinstance(error, IdleTimeout):
            return _encoder.encode(error_message(error.code, error.message)).decode()
        warning = {"type": "Warning", "description": error.message, "code": error.code}
        return _encoder.encode(warning).decode()

    async def open(self, connection: Connection[Frame]) -> None:
        await super().open(connection)
        voices, languages = self.container.speech.voices(), self.container.catalog.voice_languages()
        self.asked = asked = options.read(self.query, voices, rest=False, languages=languages)
        self.streams.principal = connection.principal
        voice = self.container.speech.candidates(asked.voice)[0].voice
        metadata = {"type": "Metadata", "request_id": self.request_id, "model_name": asked.model}
        await self.send(_encoder.encode(metadata | options.model_facts(voice)).decode())

    @HANDLERS.on(Speak)
    async def _speak(self, speak: Speak) -> None:
        assert self.asked is not None
        if not speak.text:
            raise EmptyText("Speak has no text")
        if self.current in self.streams.open:
            return await self.streams.open[str(self.current)].add_text(speak.text)
        self.opened += 1
        current = f"{self.request_id}-{self.opened}"
        await self.streams.start(current, self._say(), pipeline_id=current,
                                 piece=speak.text, voice=self.asked.voice,
                                 speed=self.asked.speed)  # fmt: skip
        self.current = current

    @HANDLERS.on(Flush, Clear)
    async def _end(self, command: Flush | Clear) -> None:
        """Flush finishes the open stream, Clear cancels every one; `Flushed` or `Cleared`
        comes after the audio of every stream before it."""
        cleared = isinstance(command, Clear)
        for stream_id in list(self.streams.open):
            if cleared:
                self.streams.cancel(stream_id)
            elif stream_id == self.current:
                self.streams.finish(stream_id)
        self.current = None
        message = {"type": "Cleared" if cleared else "Flushed", "sequence_id": self.sequence}
        self.sequence += 1
        self.streams.then(functools.partial(self.send, _encoder.encode(message).decode()))

    @HANDLERS.on(Close)
    async def _close(self, _: Close) -> None:
        await self.streams.drain(60.0)  # the rest of the speech, within a minute
        raise Closed(1000)

    def _say(self) -> Say:
        assert self.asked is not None
        encoding, rate = options.RAW[self.asked.encoding], self.asked.sample_rate
        audio = ClientAudio(self.container.speaking.converter, encoding, rate)

        async def say(item: StreamItem) -> None:
            if data := await audio.convert(item):
                await self.send(data)

        return say

    async def drain(self, seconds: float) -> None:
        await self.streams.drain(seconds)

    async def close(self) -> None:
        await self.streams.close()
