"""WebSocket /v1/listen: Deepgram's live transcription, as a dialect of the connection core.

The query is the stream's settings; binary frames are audio for one listening session; text
frames are `KeepAlive`, `Finalize`, `CloseStream` (and `Configure`, refused). Session events
go out as Deepgram's messages: `Results` (interim and final), `SpeechStarted`, `UtteranceEnd`,
and `Metadata` at the end. A bad message gets an `Error` and the stream goes on; a refused
handshake, and audio that cannot be decoded, get an `Error` and a close with 1008.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import msgspec
from litestar import WebSocket, websocket

from application.connections import Closed, Connection
from application.listening_session import ListeningLimits, ListeningSession
from application.model_choice import choose
from domain.errors import AudioTooLarge, InvalidAudio, VoicePipeError
from domain.speech import container_encoding
from entrypoints.bootstrap import Container
from entrypoints.deepgram import options, shapes
from entrypoints.deepgram.prerecorded import models
from entrypoints.deepgram.query import Query
from entrypoints.deepgram.results import LiveResults
from entrypoints.dialect import BaseDialect, Handlers
from entrypoints.websocket import Frame, chosen, serve_socket

_encoder = msgspec.json.Encoder()


def max_frame_bytes() -> int:
    """Twice an audio frame's bound: a frame a little over it still gets a coded error."""
    return 2 * ListeningLimits().max_frame_bytes


class KeepAlive(msgspec.Struct, frozen=True, tag="KeepAlive", tag_field="type"):
    pass


class Finalize(msgspec.Struct, frozen=True, tag="Finalize", tag_field="type"):
    pass


class CloseStream(msgspec.Struct, frozen=True, tag="CloseStream", tag_field="type"):
    pass


class Configure(msgspec.Struct, frozen=True, tag="Configure", tag_field="type"):
    pass


class Audio(msgspec.Struct, frozen=True):
    data: bytes


Command = KeepAlive | Finalize | CloseStream | Configure | Audio
_control = msgspec.json.Decoder(KeepAlive | Finalize | CloseStream | Configure)


class SchemaError(VoicePipeError):
    """A text message that is not one of Deepgram's control messages."""

    code = "invalid_message"

    def __init__(self, text: str) -> None:
        super().__init__(
            "a text message is a JSON object whose type is KeepAlive, Finalize or CloseStream; "
            "audio goes in binary messages"
        )
        self.text = text[:200]


@websocket("/listen")
async def listen_socket(socket: WebSocket[Any, Any, Any]) -> None:
    query = Query(socket.query_params.multi_items())
    dialect = LiveDialect(socket.app.state.container, query)
    await serve_socket(
        socket,
        dialect,
        subprotocol=chosen(socket.scope, "token", "bearer"),
        headers={"dg-request-id": dialect.request_id},
    )


HANDLERS = Handlers()


class LiveDialect(BaseDialect[Frame]):
    """One client's stream: at most one listening session, rendered as Deepgram's messages."""

    name = "deepgram"
    HANDLERS = HANDLERS

    def __init__(self, container: Container, query: Query) -> None:
        super().__init__(container)
        self.request_id = str(uuid.uuid4())
        self.query = query
        self.session: ListeningSession | None = None
        self.results: LiveResults | None = None
        self.created = container.clock.now()
        self._sha = hashlib.sha256()
        self._heard = 0.0  # seconds of audio the finished session heard
        self._ended = False  # Metadata sent: the stream is over

    def decode(self, frame: Frame) -> Command:
        if isinstance(frame, bytes):
            return Audio(frame)
        try:
            command: Command = _control.decode(frame)
        except (msgspec.DecodeError, UnicodeError, RecursionError):
            raise SchemaError(frame) from None
        return command

    def render_error(self, error: VoicePipeError, command: Command | None) -> Frame:
        if isinstance(error, SchemaError):
            message = shapes.error_message(
                error.code, error.message, variant="SchemaError", message=error.text
            )
        else:
            message = shapes.error_message(error.code, error.message)
        return _encoder.encode(message).decode()

    def paced(self, command: object) -> bool:
        return isinstance(command, Audio)

    async def open(self, connection: Connection[Frame]) -> None:
        """The query's settings; a raw encoding opens the listening session at once."""
        await super().open(connection)
        asked = options.live(
            self.query, models(self.container), self.container.listen.limits.endpoint_ms
        )
        common, catalog = asked.common, self.container.catalog
        named = (self.query.get("model") or "").strip()  # the default by name is still asked for
        model, language = choose(catalog, named if named in catalog.model_names() else common.model,
                                 common.language, detect=common.language is None)  # fmt: skip
        heard = options.Common(model, model or asked.common.model_name, language,
                               asked.common.punctuate, asked.common.prompt)  # fmt: skip
        asked = msgspec.structs.replace(asked, common=heard)
        self.results = LiveResults(asked, self.request_id, self._send, self._position)
        if asked.encoding is not None:
            self._open(asked.encoding)

    async def _send(self, message: dict[str, Any]) -> None:
        await self.send(_encoder.encode(message).decode())

    @HANDLERS.on(KeepAlive)
    async def _keep_alive(self, _: KeepAlive) -> None:
        return None  # it was received: the connection is not idle

    @HANDLERS.on(Configure)
    async def _configure(self, _: Configure) -> None:
        await self._send(
            {
                "type": "ConfigureFailure",
                "request_id": self.request_id,
                "code": "CONFIGURE_KEYTERMS_NOT_SUPPORTED",
                "description": "settings are fixed for the stream: reconnect to change them",
            }
        )

    @HANDLERS.on(Audio)
    async def _audio(self, audio: Audio) -> None:
        data = audio.data
        if not data:  # Deepgram's older way to say CloseStream
            await self._close_stream()
        if self.connection is not None and self.connection.closing:
            return
        try:
            session = self.session or self._open(container_encoding(data))
            await session.feed(data)
        except (InvalidAudio, AudioTooLarge) as error:  # the stream cannot go on
            raise Closed(1008, error) from None
        self._sha.update(data)  # what was heard: a refused frame is not
        assert self.results is not None
        await self.results.utterance_end_due()

    def _open(self, encoding: str) -> ListeningSession:
        assert self.connection is not None and self.results is not None
        asked = self.results.asked
        self.session = self.container.listen.open(
            stream_id=self.request_id,
            encoding=encoding,
            sample_rate=asked.sample_rate,
            language=asked.common.language,
            principal=self.connection.principal,
            emit=self.results.emit,
            transport="deepgram-stream",
            policy=self.results.policy,
            manual=asked.endpoint_ms is None,
            prompt=asked.common.prompt,
            words=True,  # Deepgram's finals time every word
            model=asked.common.model,
        )
        return self.session

    @HANDLERS.on(Finalize)
    async def _finalize(self, _: Finalize | None = None) -> None:
        """The utterance in progress (or the last final still to come) says `from_finalize`."""
        assert self.results is not None
        if self.session is None or not await self.session.finalize():
            await self.results.finalized_nothing()

    @HANDLERS.on(CloseStream)
    async def _close_stream(self, _: CloseStream | None = None) -> None:
        """Every final, then `Metadata`, then a normal close."""
        await self._stop(finish=True)
        await self._send_metadata()
        raise Closed(1000)

    async def _stop(self, *, finish: bool) -> None:
        session, self.session = self.session, None
        if session is None or self.results is None:
            return
        try:
            await session.stop(finish=finish)
        finally:
            self._heard = session.heard_seconds

    def _position(self) -> float:
        return self.session.heard_seconds if self.session is not None else self._heard

    async def _send_metadata(self) -> None:
        """Once, at the end of the stream (a close and a shutdown may both end it)."""
        if self._ended or self.results is None:
            return
        self._ended = True
        await self._send(
            shapes.metadata_message(
                request=self.request_id,
                model=self.results.asked.common.model_name,
                created=self.created,
                duration=self._position(),
                sha256=self._sha.hexdigest(),
            )
        )

    async def drain(self, seconds: float) -> None:
        """The utterance in progress gets its final, then `Metadata`."""
        await self._stop(finish=True)
        await self._send_metadata()

    async def close(self) -> None:
        await self._stop(finish=False)
