"""One Wyoming connection (Home Assistant's voice pipeline) as a dialect of the connection
core: describe, transcribe (streamed transcripts) and synthesize (whole or streamed text) over
the listening and speaking sessions. Wyoming has no authentication: its clients are the
anonymous principal (see ANONYMOUS_LIMITS)."""

from __future__ import annotations

import asyncio
import uuid

from wyoming import asr, audio, tts
from wyoming.error import Error
from wyoming.event import Event

from application.connections import Connection
from application.listening_session import ListeningSession
from application.next_utterance import NextUtterance
from application.speech_streams import Say, SpeechStreams
from application.stream_speech import StreamChunk, StreamFinished, StreamItem, StreamStarted
from application.transcribe_stream import Failed, Final, Partial, StreamEvent
from application.transcript_deltas import TranscriptDeltas
from domain.errors import InvalidRequest, VoicePipeError
from entrypoints.bootstrap import Container
from entrypoints.dialect import BaseDialect, Handlers
from entrypoints.errors import problem_of
from entrypoints.wyoming import events as ev
from entrypoints.wyoming.channel import Frame
from entrypoints.wyoming.describe import info

HANDLERS = Handlers()
ONE_SHOT, STREAMED = "synthesize", "synthesize-start"  # a client's two kinds of speech


class WyomingDialect(BaseDialect[Event]):
    name = "wyoming"
    HANDLERS = HANDLERS

    def __init__(self, container: Container) -> None:
        super().__init__(container)
        self._next = NextUtterance(container.catalog)  # as transcribe asked
        self._rate = 0  # of the audio-start in progress
        self._listening: ListeningSession | None = None
        self._deltas = TranscriptDeltas()
        self._transcribed = asyncio.Event()
        self._speech = SpeechStreams(container.speaking, "wyoming", self._failed)
        self._streaming_text = False  # between synthesize-start and synthesize-stop

    @property
    def busy(self) -> bool:
        return self._speech.busy

    async def open(self, connection: Connection[Event]) -> None:
        await super().open(connection)
        self._speech.principal = connection.principal

    def decode(self, frame: Frame) -> ev.Command:
        self._next.refused |= frame.type == "transcribe"  # until read and chosen: else, dropped
        return ev.decode(frame)

    def render_error(self, error: VoicePipeError, command: ev.Command | None) -> Event:
        problem = problem_of(error)
        return Error(text=problem.message, code=problem.code).event()

    def paced(self, command: object) -> bool:
        return isinstance(command, ev.AudioChunk) and bool(self._listening or self._next.refused)

    async def drain(self, seconds: float) -> None:
        """The utterance in progress gets its answer; speech in progress ends, or is cut."""
        if self._listening is not None:
            await self._audio_stop(ev.AudioStop())
        await self._speech.drain(seconds)

    async def close(self) -> None:
        await self._drop_listening()
        await self._speech.close()

    # Speech in

    @HANDLERS.on(ev.Describe)
    async def _describe(self, _: ev.Describe) -> None:
        await self.send(info(self.container.catalog).event())

    @HANDLERS.on(ev.Transcribe)
    async def _transcribe(self, event: ev.Transcribe) -> None:
        self._next.ask(event.name, event.language)

    @HANDLERS.on(ev.AudioStart)
    async def _audio_start(self, start: ev.AudioStart) -> None:
        assert self.connection is not None
        if start.width != 2 or start.channels != 1:
            raise InvalidRequest("audio must be 16-bit mono PCM (width 2, channels 1)")
        await self._drop_listening()
        if self._next.refused:
            return  # the utterance of a refused transcribe: dropped
        self._deltas, self._rate = TranscriptDeltas(), start.rate
        self._transcribed = asyncio.Event()
        self._listening = self.container.listen.open(
            stream_id=self.connection.id + "-" + uuid.uuid4().hex[:6],
            encoding="pcm_s16le",
            sample_rate=start.rate,
            language=self._next.language,
            model=self._next.model,
            principal=self.connection.principal,
            emit=self._heard,
            transport="wyoming",
            manual=True,  # Home Assistant ends the utterance with audio-stop
        )

    @HANDLERS.on(ev.AudioChunk)
    async def _audio_chunk(self, chunk: ev.AudioChunk) -> None:
        if self._listening is None and self._next.refused:
            return
        if self._listening is None:
            raise InvalidRequest("audio-chunk before audio-start")
        if chunk.width != 2 or chunk.channels != 1 or chunk.rate != self._rate:
            raise InvalidRequest(
                f"audio-chunk must be as audio-start said: 16-bit mono at {self._rate} Hz"
            )
        await self._listening.feed(chunk.audio)

    @HANDLERS.on(ev.AudioStop)
    async def _audio_stop(self, _: ev.AudioStop) -> None:
        session, self._listening = self._listening, None
        if session is None and not self._next.refused:
            raise InvalidRequest("audio-stop before audio-start")
        try:
            if session is not None and not await session.end_utterance():
                await self.send(asr.Transcript(text="").event())  # nothing was sent
            elif session is not None:
                await self._transcribed.wait()
        finally:
            if session is not None:
                await session.stop(finish=False)
            self._next.clear()

    async def _heard(self, item: StreamEvent) -> None:
        if isinstance(item, Partial):
            await self._chunk(item.text)
        elif isinstance(item, Final):
            # Always the streamed form (start, chunks, transcript, stop), as `info` promises;
            # clients that do not stream read only the transcript.
            transcript = item.result.transcript
            await self._chunk(transcript.text)
            if not self._deltas.sent:  # no chunk: transcript-start not sent yet
                await self.send(asr.TranscriptStart(language=self._next.language).event())
            text, language = transcript.text, transcript.language
            await self.send(asr.Transcript(text=text, language=language).event())
            await self.send(asr.TranscriptStop().event())
            self._transcribed.set()
        elif isinstance(item, Failed):
            await self.send(Error(text=item.message, code=item.code).event())
            self._transcribed.set()

    async def _chunk(self, text: str) -> None:
        first, delta = not self._deltas.sent, self._deltas.delta(text)  # first: nothing sent yet
        if not delta:
            return
        if first:
            await self.send(asr.TranscriptStart(language=self._next.language).event())
        await self.send(asr.TranscriptChunk(text=delta).event())

    async def _drop_listening(self) -> None:
        session, self._listening = self._listening, None
        if session is not None:
            await session.stop(finish=False)

    # Speech out

    @HANDLERS.on(ev.Synthesize)
    async def _synthesize(self, request: ev.Synthesize) -> None:
        if self._streaming_text:
            return  # inside a stream it repeats the chunks: ignored
        voice, text = self._voice(request.voice), request.text
        await self._speech.start(ONE_SHOT, self._say(), pipeline_id=_new(), voice=voice, text=text)
        await self._speech.done(ONE_SHOT)

    @HANDLERS.on(ev.SynthesizeStart)
    async def _synthesize_start(self, start: ev.SynthesizeStart) -> None:
        if STREAMED in self._speech.open:
            raise InvalidRequest("a synthesis stream is already open; send synthesize-stop")
        voice = self._voice(start.voice)
        await self._speech.start(STREAMED, self._say(), pipeline_id=_new(), voice=voice)
        self._streaming_text = True

    @HANDLERS.on(ev.SynthesizeChunk)
    async def _synthesize_chunk(self, chunk: ev.SynthesizeChunk) -> None:
        if not self._streaming_text:
            raise InvalidRequest("synthesize-chunk before synthesize-start")
        await self._speech.write(STREAMED, chunk.text, self._say(), pipeline_id=_new())

    @HANDLERS.on(ev.SynthesizeStop)
    async def _synthesize_stop(self, _: ev.SynthesizeStop) -> None:
        if not self._streaming_text:
            raise InvalidRequest("synthesize-stop before synthesize-start")
        if STREAMED in self._speech.open:
            self._speech.finish(STREAMED)
        try:
            await self._speech.done(STREAMED)
        finally:
            self._streaming_text = False
        await self.send(tts.SynthesizeStopped().event())

    async def _failed(self, _: str, error: VoicePipeError) -> None:
        await self.send(self.render_error(error, None))

    def _voice(self, voice: ev.Voice | None) -> str | None:
        return self.container.catalog.voice_for(voice.name, voice.language) if voice else None

    def _say(self) -> Say:
        """audio-start, a chunk per piece, audio-stop."""
        rate = 0

        async def say(item: StreamItem) -> None:
            nonlocal rate
            if isinstance(item, StreamStarted):
                rate = item.sample_rate
                await self.send(audio.AudioStart(rate=rate, width=2, channels=1).event())
            elif isinstance(item, StreamChunk) and item.pcm:
                chunk = audio.AudioChunk(rate=rate, width=2, channels=1, audio=item.pcm)
                await self.send(chunk.event())
            elif isinstance(item, StreamFinished) and rate:
                await self.send(audio.AudioStop().event())

        return say


def _new() -> str:
    return uuid.uuid4().hex
