"""One Wyoming connection (Home Assistant's voice pipeline): describe, transcribe (whole or
streamed transcripts) and synthesize (whole or streamed text) over the listening and speaking
sessions. Wyoming has no authentication: every connection is the anonymous principal, under
the same quotas and bounded work as an anonymous HTTP client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

import structlog
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.info import Describe
from wyoming.server import AsyncEventHandler
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
)

from application.access import ANONYMOUS
from application.listening_session import ListeningSession
from application.speaking import SpeakingSession
from application.stream_speech import StreamChunk, StreamStarted
from application.transcribe_stream import Failed, Final, Partial, StreamEvent
from application.transcript_deltas import TranscriptDeltas
from domain.errors import InvalidRequest, VoicePipeError
from entrypoints.bootstrap import Container
from entrypoints.errors import problem_of
from entrypoints.wyoming.describe import info

log = structlog.get_logger(__name__)

MAX_HEADER_BYTES = 64 * 1024  # one JSON line
MAX_DATA_BYTES = 64 * 1024  # the optional JSON data block
LINGER_SECONDS, LINGER_BYTES = 1.0, 1024 * 1024  # read and dropped after a fatal error
IDLE_SECONDS = 300.0


class WyomingHandler(AsyncEventHandler):
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        container: Container,
        live: set[Any],
    ) -> None:
        super().__init__(reader, writer)
        self.container = container
        self.live = live
        self.id = uuid.uuid4().hex[:12]
        self.max_payload = container.listen.limits.max_frame_bytes
        self._write_lock = asyncio.Lock()
        self._language: str | None = None
        self._listening: ListeningSession | None = None
        self._deltas = TranscriptDeltas()
        self._streamed = False  # transcript-start sent for this utterance
        self._transcribed = asyncio.Event()
        self._speaking: SpeakingSession | None = None
        self._speaker: asyncio.Task[None] | None = None
        self._streaming_text = False  # between synthesize-start and synthesize-stop

    async def run(self) -> None:
        """As the library's, with every read bounded before it is made (its own trusts the
        lengths a client announces)."""
        if len(self.live) >= self.container.settings.ws_max_connections:
            await self._error(InvalidRequest("the server has too many open connections"))
            self.writer.close()
            return
        self.live.add(self)
        self._is_running = True
        try:
            while self._is_running:
                try:
                    event = await asyncio.wait_for(self._read(), IDLE_SECONDS)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    break
                except InvalidRequest as error:
                    await self._error(error)  # the stream is out of step: nothing more to read
                    await self._linger()
                    break
                if event is None or not await self.handle_event(event):
                    break
        finally:
            self.live.discard(self)
            await self.disconnect()
            self.writer.close()

    async def _linger(self) -> None:
        """Half-close, and drop what the peer still sends (bounded): closing on unread input
        makes the kernel reset the connection, and the peer would lose the error."""
        with contextlib.suppress(Exception):
            if self.writer.can_write_eof():
                self.writer.write_eof()
            async with asyncio.timeout(LINGER_SECONDS):
                dropped = 0
                while dropped < LINGER_BYTES and (chunk := await self.reader.read(65_536)):
                    dropped += len(chunk)

    async def _read(self) -> Event | None:
        try:
            line = await self.reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as error:
            raise InvalidRequest("an event header line is over 64 KiB") from error
        except asyncio.IncompleteReadError as error:
            if not error.partial:
                return None
            raise
        try:
            header = json.loads(line)
        except ValueError as error:
            raise InvalidRequest("an event header is not JSON") from error
        if not isinstance(header, dict) or not isinstance(header.get("type"), str):
            raise InvalidRequest("an event header is a JSON object with a string `type`")
        data = header.get("data") or {}
        data_length = _length(header.get("data_length"), MAX_DATA_BYTES, "data")
        if data_length:
            extra = json.loads(await self.reader.readexactly(data_length))
            if not isinstance(extra, dict) or not isinstance(data, dict):
                raise InvalidRequest("event data is a JSON object")
            data = {**data, **extra}
        payload_length = _length(header.get("payload_length"), self.max_payload, "payload")
        payload = await self.reader.readexactly(payload_length) if payload_length else None
        if not isinstance(data, dict):
            raise InvalidRequest("event data is a JSON object")
        return Event(type=header["type"], data=data, payload=payload)

    async def write_event(self, event: Event) -> None:
        async with self._write_lock:
            await asyncio.wait_for(async_write_event(event, self.writer), 10)

    async def _error(self, error: Exception) -> None:
        problem = problem_of(error)
        with contextlib.suppress(Exception):
            await self.write_event(Error(text=problem.message, code=problem.code).event())

    async def handle_event(self, event: Event) -> bool:
        try:
            await self._dispatch(event)
        except VoicePipeError as error:
            await self._error(error)
        except (ConnectionError, TimeoutError):
            return False
        except Exception as error:
            log.exception("unhandled error in a wyoming event", event_type=event.type)
            await self._error(error)
        return True

    async def _dispatch(self, event: Event) -> None:
        if Describe.is_type(event.type):
            await self.write_event(info(self.container).event())
        elif Transcribe.is_type(event.type):
            language = Transcribe.from_event(event).language
            self._language = language if isinstance(language, str) and language else None
        elif AudioStart.is_type(event.type):
            await self._audio_start(AudioStart.from_event(event))
        elif AudioChunk.is_type(event.type):
            await self._audio_chunk(event)
        elif AudioStop.is_type(event.type):
            await self._audio_stop()
        elif Synthesize.is_type(event.type):
            if not self._streaming_text:  # inside a stream it repeats the chunks: ignored
                await self._synthesize(Synthesize.from_event(event))
        elif SynthesizeStart.is_type(event.type):
            await self._synthesize_start(SynthesizeStart.from_event(event))
        elif SynthesizeChunk.is_type(event.type):
            await self._synthesize_chunk(SynthesizeChunk.from_event(event))
        elif SynthesizeStop.is_type(event.type):
            await self._synthesize_stop()
        else:
            raise InvalidRequest(f"unsupported event type {event.type[:60]!r}")

    # Speech in

    async def _audio_start(self, start: AudioStart) -> None:
        if start.width != 2 or start.channels != 1:
            raise InvalidRequest("audio must be 16-bit mono PCM (width 2, channels 1)")
        await self._drop_listening()
        self._deltas, self._streamed = TranscriptDeltas(), False
        self._transcribed = asyncio.Event()
        self._listening = self.container.listen.open(
            stream_id=self.id + "-" + uuid.uuid4().hex[:6],
            encoding="pcm_s16le",
            sample_rate=start.rate,
            language=self._language,
            allowance=self.container.access.audio_allowance(ANONYMOUS),
            emit=self._heard,
            transport="wyoming",
            manual=True,  # Home Assistant ends the utterance with audio-stop
        )

    async def _audio_chunk(self, event: Event) -> None:
        if self._listening is None:
            raise InvalidRequest("audio-chunk before audio-start")
        chunk = AudioChunk.from_event(event)
        if chunk.width != 2 or chunk.channels != 1:
            raise InvalidRequest("audio must be 16-bit mono PCM (width 2, channels 1)")
        await self._listening.feed(chunk.audio)

    async def _audio_stop(self) -> None:
        session, self._listening = self._listening, None
        if session is None:
            raise InvalidRequest("audio-stop before audio-start")
        try:
            if not await session.end_utterance():
                await self.write_event(Transcript(text="").event())  # nothing was sent
                return
            await self._transcribed.wait()
        finally:
            await session.stop(finish=False)
        self._language = None

    async def _heard(self, item: StreamEvent) -> None:
        if isinstance(item, Partial):
            await self._chunk(item.text)
        elif isinstance(item, Final):
            # Always the streamed form (start, chunks, transcript, stop), as `info` promises;
            # clients that do not stream read only the transcript.
            transcript = item.result.transcript
            await self._chunk(transcript.text)
            if not self._streamed:
                await self.write_event(TranscriptStart(language=self._language).event())
            await self.write_event(
                Transcript(text=transcript.text, language=transcript.language).event()
            )
            await self.write_event(TranscriptStop().event())
            self._transcribed.set()
        elif isinstance(item, Failed):
            await self.write_event(Error(text=item.message, code=item.code).event())
            self._transcribed.set()

    async def _chunk(self, text: str) -> None:
        delta = self._deltas.delta(text)
        if not delta:
            return
        if not self._streamed:
            self._streamed = True
            await self.write_event(TranscriptStart(language=self._language).event())
        await self.write_event(TranscriptChunk(text=delta).event())

    async def _drop_listening(self) -> None:
        session, self._listening = self._listening, None
        if session is not None:
            await session.stop(finish=False)

    # Speech out

    async def _synthesize(self, request: Synthesize) -> None:
        voice = request.voice.name if request.voice is not None else None
        session = await self.container.speaking.open(
            ANONYMOUS,
            pipeline_id=uuid.uuid4().hex,
            transport="wyoming",
            voice=voice,
            text=request.text,
        )
        await self._speak(session)

    async def _synthesize_start(self, start: SynthesizeStart) -> None:
        if self._speaker is not None and not self._speaker.done():
            raise InvalidRequest("a synthesis stream is already open; send synthesize-stop")
        voice = start.voice.name if start.voice is not None else None
        self._speaking = await self.container.speaking.open(
            ANONYMOUS, pipeline_id=uuid.uuid4().hex, transport="wyoming", voice=voice
        )
        self._streaming_text = True
        self._speaker = asyncio.get_running_loop().create_task(self._speak(self._speaking))

    async def _synthesize_chunk(self, chunk: SynthesizeChunk) -> None:
        if self._speaking is None:
            raise InvalidRequest("synthesize-chunk before synthesize-start")
        await self._speaking.add_text(chunk.text)

    async def _synthesize_stop(self) -> None:
        session, speaker = self._speaking, self._speaker
        if session is None or speaker is None:
            raise InvalidRequest("synthesize-stop before synthesize-start")
        session.finish()
        try:
            await speaker
        finally:
            self._speaking, self._speaker, self._streaming_text = None, None, False
        await self.write_event(SynthesizeStopped().event())

    async def _speak(self, session: SpeakingSession) -> None:
        """audio-start, a chunk per piece, audio-stop; speech errors as an error event."""
        rate = 0
        try:
            async for item in session.items():
                if isinstance(item, StreamStarted):
                    rate = item.sample_rate
                    await self.write_event(AudioStart(rate=rate, width=2, channels=1).event())
                elif isinstance(item, StreamChunk) and item.pcm:
                    await self.write_event(
                        AudioChunk(rate=rate, width=2, channels=1, audio=item.pcm).event()
                    )
            if rate:
                await self.write_event(AudioStop().event())
        except VoicePipeError as error:
            await self._error(error)
        finally:
            await session.close()

    async def disconnect(self) -> None:
        await self._drop_listening()
        if self._speaking is not None:
            self._speaking.cancel()
        if self._speaker is not None:
            await asyncio.gather(self._speaker, return_exceptions=True)


def _length(value: Any, limit: int, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequest(f"{what}_length must be a non-negative integer")
    if value > limit:
        raise InvalidRequest(f"an event's {what} is limited to {limit} bytes")
    return value
