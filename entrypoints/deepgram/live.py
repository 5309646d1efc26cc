"""WebSocket /v1/listen: Deepgram's live transcription over a listening session.

The transport admits the client (origin, key, slots), reads the query as the stream's
settings, feeds binary frames to the session and renders its events as Deepgram's messages:
`Results` (interim and final), `SpeechStarted`, `UtteranceEnd`, and `Metadata` at the end.
A bad message gets an `Error` and the stream goes on; a refused handshake, and audio that
cannot be decoded, get an `Error` and a close with 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import uuid
from typing import Any

import msgspec
import structlog
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from application.access import ANONYMOUS, SOCKET, Access, Principal, RateLimited
from application.listening_session import ListeningSession
from application.transcribe_stream import (
    Failed,
    Final,
    Partial,
    SpeechStarted,
    SpeechStopped,
    StreamEvent,
)
from domain.errors import AudioTooLarge, InvalidAudio, VoicePipeError
from domain.token_bucket import TokenBucket
from domain.utterances import WINDOW_MS, Endpointing
from entrypoints.bootstrap import Container
from entrypoints.deepgram import options, shapes
from entrypoints.deepgram.prerecorded import models
from entrypoints.security import (
    TOKEN_PREFIX,
    Forbidden,
    TooManyConnections,
    hold_slot,
    offered_subprotocols,
    origin_allowed,
    presented_key,
)

log = structlog.get_logger(__name__)

TRANSPORT = "deepgram-stream"
SEND_TIMEOUT = 10.0  # a client that reads nothing for this long is dropped
MESSAGES_PER_SECOND, MESSAGE_BURST = 50.0, 200.0  # text messages (audio is paced in seconds)
KEY_SCHEMES = ("token", "bearer")  # browsers: subprotocols ["token", "<key>"]
CONTAINER_MAGIC = {b"OggS": "ogg", b"\x1a\x45\xdf\xa3": "webm"}
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


@websocket("/listen")
async def listen_socket(socket: WebSocket[Any, Any, Any]) -> None:
    await LiveStream(socket, socket.app.state.container).run()


def chosen(scope: Any) -> str | None:
    offered = offered_subprotocols(scope)
    if not offered:
        return None
    return next((p for p in offered if p.lower() in KEY_SCHEMES), offered[0])


async def principal_of(access: Access, scope: Any) -> Principal:
    """`Authorization: Token <key>` (or Bearer, X-API-Key); a browser's subprotocols
    `["token", "<key>"]`; or this service's one-time `token.<token>` subprotocol."""
    if access.open:
        return ANONYMOUS
    presented = presented_key(scope)
    offered = offered_subprotocols(scope)
    for scheme, value in itertools.pairwise(offered):
        if presented is None and scheme.lower() in KEY_SCHEMES:
            presented = value
    if presented is None:
        for protocol in offered:
            if protocol.startswith(TOKEN_PREFIX):
                return await access.redeem(protocol.removeprefix(TOKEN_PREFIX), SOCKET)
    return access.authenticate(presented)


class LiveStream:
    """One client's stream: at most one listening session, rendered as Deepgram's messages."""

    def __init__(self, socket: WebSocket[Any, Any, Any], container: Container) -> None:
        self.socket = socket
        self.container = container
        self.id = uuid.uuid4().hex[:12]
        self.request_id = str(uuid.uuid4())
        self.live: set[Any] = socket.app.state.connections
        self.clock = container.clock
        self.principal: Principal = ANONYMOUS
        self.asked: options.Live | None = None
        self.session: ListeningSession | None = None
        self.created = self.clock.now()
        self.closing = False
        self._send_lock = asyncio.Lock()
        self._messages = TokenBucket(MESSAGES_PER_SECOND, MESSAGE_BURST, self.clock.monotonic())
        self._sha = hashlib.sha256()
        self._heard = 0.0  # seconds of audio the finished session heard
        self._policy: Endpointing | None = None
        self._starts: dict[int, float] = {}  # utterance -> its start, in stream seconds
        self._next_start = 0.0  # where the next utterance starts when the client cuts them
        self._finalized: set[int] = set()  # utterances ended by Finalize
        self._cut: set[int] = set()  # ended otherwise than by silence (Finalize, close, bound)
        self._awaiting: list[int] = []  # utterances ended whose final has not come yet
        self._cutting: str | None = None  # "finalize" or "close": whose are the stops now
        self._speaking = False
        self._speech_at = 0.0
        self._last_word_end: float | None = None  # words not yet followed by an UtteranceEnd
        self._ended = False  # Metadata sent: the stream is over

    # The connection

    async def run(self) -> None:
        if not await self._admit():
            return
        structlog.contextvars.bind_contextvars(connection_id=self.id)
        log.info("deepgram stream connected")
        keepalive = asyncio.get_running_loop().create_task(
            hold_slot(self.container.access, self.principal, self.id)
        )
        try:
            while (event := await self._next_event()) is not None:
                if event["type"] == "websocket.disconnect":
                    break
                if not await self._receive(event):
                    break
        except (WebSocketDisconnect, TimeoutError, OSError):
            pass
        finally:
            self.live.discard(self)
            keepalive.cancel()
            await self._stop(finish=False)
            await self.container.access.disconnect(self.principal, self.id)
            log.info("deepgram stream closed")
            structlog.contextvars.unbind_contextvars("connection_id")

    async def _admit(self) -> bool:
        """Origin, key, settings, connection limits; a refusal is an `Error`, then 1008."""
        scope, settings = self.socket.scope, self.container.settings
        await self.socket.accept(
            subprotocols=chosen(scope), headers={"dg-request-id": self.request_id}
        )
        try:
            if not origin_allowed(scope, settings):
                raise Forbidden(
                    "this page's origin may not open WebSockets here (WS_ALLOWED_ORIGINS)"
                )
            self.principal = await principal_of(self.container.access, scope)
            self.asked = options.live(
                options.Query(self.socket.query_params.multi_items()),
                models(self.container),
                self.container.listen.limits.endpoint_ms,
            )
            if len(self.live) >= settings.ws_max_connections:
                raise TooManyConnections("the server has too many open connections; retry shortly")
            self.live.add(self)  # taken before the next await: no check-then-add race
            await self.container.access.connect(self.principal, self.id)
            try:
                if self.asked.encoding is not None:
                    self._open(self.asked.encoding)
            except VoicePipeError:
                await self.container.access.disconnect(self.principal, self.id)
                raise
        except VoicePipeError as error:
            self.live.discard(self)
            await self._refuse(error)
            return False
        return True

    async def _refuse(self, error: VoicePipeError) -> None:
        log.info("deepgram stream refused", code=error.code)
        param = getattr(error, "param", None)
        reason = f"{error.code}: {param}" if isinstance(param, str) else error.code
        with contextlib.suppress(Exception):
            await self.send(shapes.error_message(error.code, error.message))
            await self.socket.close(code=1008, reason=reason[:120])

    async def _next_event(self) -> Any:
        idle = self.container.settings.ws_idle_seconds
        try:
            return await asyncio.wait_for(self.socket.receive(), idle)
        except TimeoutError:
            with contextlib.suppress(Exception):
                await self.send(
                    shapes.error_message("idle_timeout", f"no audio or message for {idle:g} s")
                )
                await self.socket.close(code=1000, reason="idle timeout")
            return None

    async def drain(self, seconds: float) -> None:
        """Server shutting down: the utterance in progress gets its final, then `Metadata`,
        then a close with 1001."""
        self.closing = True
        try:
            async with asyncio.timeout(seconds):
                await self._stop(finish=True)
                await self._send_metadata()
        except (TimeoutError, WebSocketDisconnect, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                await self.socket.close(code=1001, reason="server shutting down")

    async def send(self, message: dict[str, Any]) -> None:
        data = _encoder.encode(message).decode()
        async with self._send_lock:
            await asyncio.wait_for(self.socket.send_text(data), SEND_TIMEOUT)

    # Client messages

    async def _receive(self, event: Any) -> bool:
        """False once the stream is over (CloseStream, or audio that cannot be decoded)."""
        text = event.get("text")
        try:
            if text is None:
                return await self._audio(event.get("bytes") or b"")
            if not self._messages.take(1, self.clock.monotonic()):
                raise RateLimited("too many messages; at most 50 a second")
            return await self._control(text)
        except (InvalidAudio, AudioTooLarge) as error:  # the stream cannot go on
            await self._refuse(error)
            return False
        except VoicePipeError as error:
            await self.send(shapes.error_message(error.code, error.message))
        except (WebSocketDisconnect, TimeoutError, OSError):
            raise
        except Exception:
            log.exception("unhandled error in a deepgram stream")
            await self.send(
                shapes.error_message("internal_error", "internal error; the stream goes on")
            )
        return True

    async def _control(self, text: str) -> bool:
        try:
            message = _decoder.decode(text)
        except msgspec.DecodeError:
            message = None
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "KeepAlive":
            return True
        if kind == "Finalize":
            await self.container.access.admit_request(self.principal)
            await self._finalize()
            return True
        if kind == "CloseStream":
            await self._close_stream()
            return False
        if kind == "Configure":
            await self.send(
                {
                    "type": "ConfigureFailure",
                    "request_id": self.request_id,
                    "code": "CONFIGURE_KEYTERMS_NOT_SUPPORTED",
                    "description": "settings are fixed for the stream: reconnect to change them",
                }
            )
            return True
        await self.send(
            shapes.error_message(
                "invalid_message",
                "a text message is a JSON object whose type is KeepAlive, Finalize or "
                "CloseStream; audio goes in binary messages",
                variant="SchemaError",
                message=text[:200],
            )
        )
        return True

    async def _audio(self, data: bytes) -> bool:
        if not data:  # Deepgram's older way to say CloseStream
            await self._close_stream()
            return False
        if self.closing:
            return True
        session = self.session or self._open(self._sniffed(data))
        await session.feed(data)
        self._sha.update(data)  # what was heard: a refused frame is not
        await self._utterance_end_due()
        return True

    def _sniffed(self, data: bytes) -> str:
        for magic, encoding in CONTAINER_MAGIC.items():
            if data.startswith(magic):
                return encoding
        raise InvalidAudio(
            "without `encoding` the audio must be Ogg or WebM; for raw audio set encoding "
            "(linear16, mulaw, alaw) and sample_rate"
        )

    def _open(self, encoding: str) -> ListeningSession:
        asked = self.asked
        assert asked is not None
        endpoint = asked.endpoint_ms
        self._policy = Endpointing(endpoint_ms=endpoint) if endpoint is not None else None
        self.session = self.container.listen.open(
            stream_id=self.request_id,
            encoding=encoding,
            sample_rate=asked.sample_rate,
            language=asked.common.language,
            allowance=self.container.access.audio_allowance(self.principal),
            emit=self._emit,
            transport=TRANSPORT,
            policy=self._policy,
            manual=endpoint is None,
            prompt=asked.common.prompt,
            words=True,  # Deepgram's finals time every word
        )
        return self.session

    async def _finalize(self) -> None:
        """The utterance in progress ends now: its final says `from_finalize`. With none in
        progress, the last one still to come says it; with none at all, an empty final."""
        ended = False
        if self.session is not None:
            self._cutting = "finalize"
            try:
                ended = await self.session.end_utterance()
            finally:
                self._cutting = None
        if ended:
            return
        if self._awaiting:
            self._finalized.add(self._awaiting[-1])
            return
        await self.send(self._results(self._position(), 0.0, "", [], final=True, finalize=True))

    async def _close_stream(self) -> None:
        """Every final, then `Metadata`, then a normal close."""
        await self._stop(finish=True)
        with contextlib.suppress(Exception):
            await self._send_metadata()
            await self.socket.close(code=1000)

    async def _stop(self, *, finish: bool) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        self._cutting = "close"
        try:
            await session.stop(finish=finish)
        finally:
            self._cutting = None
            self._heard = session.heard_seconds

    def _position(self) -> float:
        return self.session.heard_seconds if self.session is not None else self._heard

    async def _send_metadata(self) -> None:
        """Once, at the end of the stream (a close and a shutdown may both end it)."""
        if self._ended or self.asked is None:
            return
        self._ended = True
        await self.send(
            shapes.metadata_message(
                request=self.request_id,
                model=self.asked.common.model_name,
                created=self.created,
                duration=self._position(),
                sha256=self._sha.hexdigest(),
            )
        )

    # Session events

    async def _emit(self, event: StreamEvent) -> None:
        asked = self.asked
        assert asked is not None
        if isinstance(event, SpeechStarted):
            start = event.audio_ms / 1000
            self._starts[event.utterance] = start
            self._speaking, self._speech_at = True, start
            await self._utterance_end_due()
            if asked.vad_events:
                await self.send({"type": "SpeechStarted", "channel": [0], "timestamp": start})
        elif isinstance(event, SpeechStopped):
            self._speaking = False
            self._awaiting.append(event.utterance)
            if self._cutting is not None:
                self._cut.add(event.utterance)
                if self._cutting == "finalize":
                    self._finalized.add(event.utterance)
            elif self._policy is not None and event.utterance in self._starts:
                length_ms = event.audio_ms - 1000 * self._starts[event.utterance]
                if length_ms >= self._policy.max_utterance_ms - WINDOW_MS:
                    self._cut.add(event.utterance)  # at the length bound
        elif isinstance(event, Partial):
            if asked.interim_results:
                start = self._starts.get(event.utterance, self._next_start)
                duration = event.audio_ms / 1000
                words = shapes.estimated_words(event.text, start, start + duration, 0.0)
                await self.send(self._results(start, duration, event.text, words, final=False))
        elif isinstance(event, Final):
            await self._final(event)
        elif isinstance(event, Failed):
            self._done(event.utterance)
            await self.send(
                shapes.error_message(
                    event.code, f"an utterance could not be transcribed: {event.message}"
                )
            )

    async def _final(self, event: Final) -> None:
        asked = self.asked
        assert asked is not None
        finalized = event.utterance in self._finalized
        by_silence = not finalized and event.utterance not in self._cut
        self._done(event.utterance)
        self._next_start = event.end
        transcript = event.result.transcript
        words = shapes.segment_words(transcript, event.start, event.end)
        message = self._results(
            event.start,
            event.end - event.start,
            transcript.text,
            words,
            final=True,
            speech_final=by_silence and asked.endpoint_ms is not None,
            finalize=finalized,
        )
        await self.send(message)
        if words:
            self._last_word_end = words[-1].end
        await self._utterance_end_due()

    def _done(self, utterance: int) -> None:
        if utterance in self._awaiting:
            self._awaiting.remove(utterance)
        self._finalized.discard(utterance)
        self._cut.discard(utterance)
        self._starts.pop(utterance, None)

    async def _utterance_end_due(self) -> None:
        """`UtteranceEnd` once `utterance_end_ms` of audio passed with no word after the last
        final's words (counted in audio time: the stream's position, or where speech began
        again)."""
        asked = self.asked
        last = self._last_word_end
        if asked is None or asked.utterance_end_ms is None or last is None or self._awaiting:
            return  # (a final still to come may have later words)
        gap = asked.utterance_end_ms / 1000
        until = self._speech_at if self._speaking else self._position()
        if until - last < gap - 1e-6:
            return
        if self._speaking and self._speech_at < last:
            return  # the speech going on is the one those words came from
        self._last_word_end = None
        await self.send({"type": "UtteranceEnd", "channel": CHANNEL, "last_word_end": last})

    def _results(
        self,
        start: float,
        duration: float,
        text: str,
        words: list[shapes.DgWord],
        *,
        final: bool,
        speech_final: bool = False,
        finalize: bool = False,
    ) -> dict[str, Any]:
        asked = self.asked
        assert asked is not None
        punctuate = asked.common.punctuate
        return shapes.results_message(
            request=self.request_id,
            model=asked.common.model_name,
            start=start,
            duration=max(duration, 0.0),
            alternative=shapes.alternative(text, words, punctuate),
            is_final=final,
            speech_final=speech_final,
            from_finalize=finalize,
        )


CHANNEL = shapes.CHANNEL_INDEX
