"""Audio in on the WebSocket: the connection's listening session and its v1 frames."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from application.access import Principal
from application.catalog import Catalog
from application.listening_session import ListeningSession, StartListening
from application.model_choice import choose
from application.transcribe_stream import Emit, Failed, Final, Partial, StreamEvent
from domain.errors import InvalidRequest, VoicePipeError
from entrypoints.v1.frames import (
    FinalFrame,
    PartialFrame,
    ServerFrame,
    SttStarted,
    SttStopped,
    UtteranceFailed,
)
from entrypoints.v1.wire import SttEnd, SttStart, SttStop

SendFrame = Callable[[ServerFrame], Awaitable[None]]


class UnsupportedFrame(VoicePipeError):
    code = "unsupported_frame"


class ListeningIn:
    """At most one listening session per connection, opened by `stt_start`."""

    def __init__(
        self,
        listen: StartListening,
        principal: Callable[[], Principal],
        send: SendFrame,
        catalog: Catalog | None = None,
    ) -> None:
        self.listen = listen
        self.catalog = catalog
        self.principal = principal
        self.send = send
        self.session: ListeningSession | None = None

    async def control(self, message: SttStart | SttEnd | SttStop, request_id: str) -> None:
        if isinstance(message, SttStart):
            await self._start(message, request_id)
        elif self.session is None:
            raise InvalidRequest("no utterance stream is open; send stt_start first")
        elif isinstance(message, SttEnd):
            await self.session.end_utterance()
        else:
            await self.stop()

    async def audio(self, data: bytes) -> None:
        if self.session is None:
            raise UnsupportedFrame("binary frames carry audio only after an `stt_start` message")
        await self.session.feed(data)

    async def stop(self) -> None:
        """The utterance in progress gets its final, then `stt_stopped`."""
        session, self.session = self.session, None
        if session is not None:
            await session.stop(finish=True)
            await self.send(SttStopped(session.stream_id))

    async def drop(self) -> None:
        """The client left: queued work is dropped, the key pays what was heard."""
        session, self.session = self.session, None
        if session is not None:
            await session.stop(finish=False)

    async def _start(self, message: SttStart, request_id: str) -> None:
        if self.session is not None:
            raise InvalidRequest("an utterance stream is already open; send stt_stop first")
        stream_id = message.id or request_id
        model, language = None, message.language
        if self.catalog is not None:  # refused before anything is opened or charged
            model, language = choose(self.catalog, message.model, message.language)
        self.session = self.listen.open(
            stream_id=stream_id,
            encoding=message.encoding,
            sample_rate=message.sample_rate,
            language=language,
            model=model,
            principal=self.principal(),
            emit=renderer(stream_id, self.send),
        )
        await self.send(SttStarted(stream_id))


def renderer(stream_id: str, send: SendFrame) -> Emit:
    """The session's `emit`: each event as the frame documented in docs/api.md."""

    async def emit(item: StreamEvent) -> None:
        if isinstance(item, Partial | Final | Failed):  # v1 has no speech start/stop frames
            await send(frame(stream_id, item))

    return emit


def frame(stream_id: str, item: Partial | Final | Failed) -> ServerFrame:
    if isinstance(item, Failed):
        return UtteranceFailed(stream_id, item.utterance, item.code, item.message)
    if isinstance(item, Partial):
        return PartialFrame(stream_id, item.utterance, item.text, item.audio_ms)
    transcript = item.result.transcript
    return FinalFrame(
        id=stream_id,
        utterance=item.utterance,
        start=item.start,
        end=item.end,
        text=transcript.text,
        language=transcript.language,
        language_probability=transcript.language_probability,
        segments=transcript.segments,
        sentiment=item.result.sentiment,
        latency_ms=item.result.latency_ms,
        end_of_speech_ms=item.end_of_speech_lag_ms,
    )
