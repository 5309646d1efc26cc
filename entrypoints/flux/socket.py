"""WebSocket /v2/listen: Deepgram Flux, a dialect of the connection core. The query is the
stream's settings (options.py); binary frames are audio for one listening session, its events
go out as `TurnInfo` (turns.py). A bad message gets an `Error` and the stream goes on; a
refused handshake and audio that cannot be decoded get an `Error` and a close with 1008."""

from __future__ import annotations

import itertools
import uuid
from typing import Any, Literal

import msgspec
from litestar import Router, WebSocket, websocket

from application.connections import Closed, Connection
from application.listening_session import ListeningSession
from domain.errors import AudioTooLarge, InvalidAudio, InvalidRequest, VoicePipeError
from domain.speech import container_encoding
from domain.utterances import Endpointing
from entrypoints.bootstrap import Container
from entrypoints.deepgram.live import Audio, CloseStream
from entrypoints.deepgram.query import Query, UnsupportedFeature
from entrypoints.dialect import BaseDialect, Handlers
from entrypoints.flux import options
from entrypoints.flux.turns import TurnReport
from entrypoints.websocket import Frame, chosen, serve_socket

_encoder = msgspec.json.Encoder()


class Configure(msgspec.Struct, frozen=True, tag="Configure", tag_field="type"):
    thresholds: dict[Literal["eot_threshold", "eager_eot_threshold", "eot_timeout_ms"], float] = {}
    keyterms: list[str] | str | None = None
    language_hints: list[str] | None = None


class ForceEndTurn(msgspec.Struct, frozen=True, tag="ForceEndTurn", tag_field="type"):
    pass


Command = Configure | ForceEndTurn | CloseStream | Audio
_control = msgspec.json.Decoder(Configure | ForceEndTurn | CloseStream)
HANDLERS = Handlers()


@websocket("/listen")
async def flux_socket(socket: WebSocket[Any, Any, Any]) -> None:
    dialect = FluxDialect(socket.app.state.container, Query(socket.query_params.multi_items()))
    headers, subprotocol = {"dg-request-id": dialect.request_id}, chosen(socket.scope, "token")
    await serve_socket(socket, dialect, subprotocol=subprotocol, headers=headers)


flux_router = Router(path="/v2", route_handlers=[flux_socket])


class FluxDialect(BaseDialect[Frame]):
    """One client's stream: one listening session, its utterances as Flux's turns."""

    name = "flux"
    HANDLERS = HANDLERS

    def __init__(self, container: Container, query: Query) -> None:
        super().__init__(container)
        self.request_id = str(uuid.uuid4())
        self.query = query
        self.session: ListeningSession | None = None
        self.report = TurnReport(self._send)
        self._sequence = itertools.count()

    def decode(self, frame: Frame) -> Command:
        if isinstance(frame, bytes):
            return Audio(frame)
        try:
            command: Command = _control.decode(frame)
        except (msgspec.DecodeError, UnicodeError, RecursionError):
            raise InvalidRequest("text is Configure, ForceEndTurn or CloseStream (JSON)") from None
        return command

    def render_error(self, error: VoicePipeError, command: Command | None) -> Frame:
        code, description = error.code.upper(), error.message
        return self._frame({"type": "Error", "code": code, "description": description})

    def paced(self, command: object) -> bool:
        return isinstance(command, Audio)

    async def open(self, connection: Connection[Frame]) -> None:
        await super().open(connection)  # the query's settings; a raw encoding opens at once
        self.asked = options.asked(self.query)
        self.thresholds = self.asked.thresholds
        await self._send({"type": "Connected"})
        if self.asked.encoding is not None:
            self._open(self.asked.encoding)

    def _frame(self, message: dict[str, Any]) -> str:
        ids = {"request_id": self.request_id, "sequence_id": next(self._sequence)}
        return _encoder.encode(message | ids).decode()

    async def _send(self, message: dict[str, Any]) -> None:
        await self.send(self._frame(message))

    def _policy(self) -> Endpointing:
        listen = self.container.listen
        return self.thresholds.endpointing(listen.default_policy(), listen.turns is not None)

    def _open(self, encoding: str) -> ListeningSession:
        assert self.connection is not None
        asked = self.asked
        self.session = self.container.listen.open(
            stream_id=self.request_id,
            encoding=encoding,
            sample_rate=asked.sample_rate,
            language=asked.language,
            principal=self.connection.principal,
            emit=self.report.emit,
            transport="flux-stream",
            policy=self._policy(),
            prompt=asked.prompt,
            words=True,
        )
        return self.session

    @HANDLERS.on(Audio)
    async def _audio(self, audio: Audio) -> None:
        if not audio.data or (self.connection is not None and self.connection.closing):
            return
        try:
            session = self.session or self._open(container_encoding(audio.data))
            await session.feed(audio.data)
        except (InvalidAudio, AudioTooLarge) as error:  # the stream cannot go on
            raise Closed(1008, error) from None

    @HANDLERS.on(Configure)
    async def _configure(self, configure: Configure) -> None:
        try:  # new thresholds from the next piece of audio; a refusal changes nothing
            if configure.keyterms is not None or configure.language_hints is not None:
                raise UnsupportedFeature("keyterms", "keyterms are fixed for the stream")
            self.thresholds = self.thresholds.updated(**configure.thresholds)
        except VoicePipeError as refused:
            code, why = refused.code.upper(), refused.message
            await self._send({"type": "ConfigureFailure", "code": code, "description": why})
            return
        if self.session is not None:
            self.session.utterances.retune(self._policy())
        keyterms = self.query.getall("keyterm")
        now = {"thresholds": msgspec.to_builtins(self.thresholds), "keyterms": keyterms}
        await self._send({"type": "ConfigureSuccess"} | now)

    @HANDLERS.on(ForceEndTurn)
    async def _force_end_turn(self, _: ForceEndTurn) -> None:
        if self.session is not None:
            await self.session.end_utterance()

    @HANDLERS.on(CloseStream)
    async def _close_stream(self, _: CloseStream) -> None:
        """The turn in progress ends (EndOfTurn), then a normal close."""
        await self._stop(finish=True)
        raise Closed(1000)

    async def _stop(self, *, finish: bool) -> None:
        session, self.session = self.session, None
        if session is not None:
            await session.stop(finish=finish)

    async def drain(self, seconds: float) -> None:  # the turn in progress ends
        await self._stop(finish=True)

    async def close(self) -> None:
        await self._stop(finish=False)
