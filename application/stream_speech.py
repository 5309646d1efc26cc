"""Use case: speak text piece by piece as it arrives, so audio starts before it is all said."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec

from application.pipeline_run import PipelineRun
from application.synthesize_speech import SynthesizeSpeech
from domain.errors import StepFailed, VoicePipeError
from domain.events import AudioProcessed, AudioStreamed, RequestReceived
from domain.speech import (
    AudioClip,
    AudioFormat,
    ProcessingSettings,
    Sentiment,
    SpeechRequest,
    SpokenAudio,
    normalize_text,
)
from domain.text_pieces import complete_sentences, first_pieces, pieces_of, split_long

# Pieces are trimmed like one-shot audio (no dead air at the start or end of the stream, where
# Whisper hallucinates on silence) and a fixed pause is put back between them.
STREAM_PROCESSING = ProcessingSettings()
PAUSE_MS = 250
CACHED_CHUNK_SECONDS = 0.5


class StreamStarted(msgspec.Struct, frozen=True):
    sample_rate: int
    provider: str
    voice: str
    cached: bool
    fallback: bool


class StreamChunk(msgspec.Struct, frozen=True):
    seq: int
    pcm: bytes


class StreamFinished(msgspec.Struct, frozen=True):
    duration: float
    latency_ms: float
    first_chunk_ms: float
    cached: bool
    cancelled: bool
    chunks: int
    sentiment: Sentiment | None
    text: str


StreamItem = StreamStarted | StreamChunk | StreamFinished


class SpeechStream:
    """One streamed synthesis: text goes in (whole or in pieces), audio chunks come out.

    Rules:
    - Synthesis starts at each complete sentence; long sentences are cut at clauses, and the
      first piece is kept short so the first chunk comes fast. `finish` speaks the rest.
    - Chunks are raw mono s16le PCM at the start message's rate, each cleaned up (compression,
      loudness, silence trim) on its own and joined by a fixed pause: no clicks, no level jumps.
    - `cancel` stops after the piece being synthesized; nothing more is sent or cached.
    - A whole text given at once is looked up in the cache first and, once fully spoken, stored.
    """

    def __init__(
        self, speech: SynthesizeSpeech, run: PipelineRun, voice: str | None, use_cache: bool
    ) -> None:
        self.speech = speech
        self.run = run
        self.candidates = speech.providers.candidates(voice)
        self.use_cache = use_cache
        self._buffer = ""
        self._spoken: list[str] = []
        self._pieces: asyncio.Queue[str | None] = asyncio.Queue()
        self._whole_text: str | None = None
        self.cancelled = False

    def add_text(self, text: str) -> None:
        sentences, self._buffer = complete_sentences(self._buffer + text)
        for sentence in sentences:
            self._queue(sentence)

    def finish(self) -> None:
        if self._buffer.strip():
            self._queue(self._buffer.strip())
        self._buffer = ""
        self._pieces.put_nowait(None)

    def speak_whole(self, text: str) -> None:
        self._whole_text = text
        for piece in pieces_of(text):
            self._pieces.put_nowait(piece)
        self._pieces.put_nowait(None)

    def cancel(self) -> None:
        self.cancelled = True
        self._pieces.put_nowait(None)

    def _queue(self, sentence: str) -> None:
        first = not self._spoken and self._pieces.empty()
        for piece in first_pieces(sentence) if first else split_long(sentence):
            self._pieces.put_nowait(piece)

    def _request(self, text: str) -> SpeechRequest:
        return SpeechRequest(
            text=text,
            voice=self.candidates[0].voice,
            audio_format=AudioFormat.PCM,
            processing=STREAM_PROCESSING,
        )

    async def items(self) -> AsyncIterator[StreamItem]:
        """Start, then chunks, then a finish with totals (also after a cancel)."""
        cached = await self._cached()
        if cached is not None:
            async for item in self._replay(cached):
                yield item
            return
        seq, first_ms, pcm = 0, 0.0, bytearray()
        rate, served = 0, None
        while not self.cancelled:
            piece = await self._pieces.get()
            if piece is None or self.cancelled:
                break
            self._spoken.append(piece)
            spoken = await self.speech.providers.first_available(self.candidates, piece, self.run)
            if spoken is None:
                self.run.failed("synthesis", "synthesis_failed")
                raise StepFailed("synthesis", "no speech provider could speak this text")
            candidate, clip = spoken
            clip = await self._process(clip)
            if served is None:
                served, rate = candidate, clip.sample_rate
                first_ms = self.run.elapsed_ms()
                fallback = candidate.voice.provider != self.candidates[0].voice.provider
                yield StreamStarted(rate, served.voice.provider, served.voice.name, False, fallback)
            chunk = clip.pcm if seq == 0 else _silence(rate) + clip.pcm
            pcm += chunk
            yield StreamChunk(seq, chunk)
            seq += 1
        text = " ".join(self._spoken)
        sentiment = await self._sentiment(text)
        self.run.record(
            AudioStreamed,
            chunks=seq,
            first_chunk_ms=first_ms,
            audio_ms=round(1000 * len(pcm) / 2 / rate, 3) if rate else 0.0,
            cancelled=self.cancelled,
        )
        if served is not None and not self.cancelled and self.use_cache and text:
            audio = SpokenAudio(bytes(pcm), AudioFormat.PCM, rate, 0.0, served.voice, sentiment)
            await self.speech.store(self._request(text).cache_key(), audio, self.run)
        yield StreamFinished(
            duration=round(len(pcm) / 2 / rate, 3) if rate else 0.0,
            latency_ms=self.run.completed(),
            first_chunk_ms=first_ms,
            cached=False,
            cancelled=self.cancelled,
            chunks=seq,
            sentiment=sentiment,
            text=text,
        )

    async def _cached(self) -> SpokenAudio | None:
        if self._whole_text is None or not self.use_cache:
            return None
        return await self.speech.lookup(self._request(self._whole_text).cache_key(), self.run)

    async def _replay(self, audio: SpokenAudio) -> AsyncIterator[StreamItem]:
        voice = audio.voice
        yield StreamStarted(audio.sample_rate, voice.provider, voice.name, True, False)
        first_ms = self.run.elapsed_ms()
        step = int(audio.sample_rate * CACHED_CHUNK_SECONDS) * 2
        chunks = [audio.data[i : i + step] for i in range(0, len(audio.data), step)]
        for seq, chunk in enumerate(chunks):
            if self.cancelled:
                break
            yield StreamChunk(seq, chunk)
        self.run.record(
            AudioStreamed,
            chunks=len(chunks),
            first_chunk_ms=first_ms,
            audio_ms=round(1000 * len(audio.data) / 2 / audio.sample_rate, 3),
            cancelled=self.cancelled,
        )
        yield StreamFinished(
            duration=round(len(audio.data) / 2 / audio.sample_rate, 3),
            latency_ms=self.run.completed(cached=True),
            first_chunk_ms=first_ms,
            cached=True,
            cancelled=self.cancelled,
            chunks=len(chunks),
            sentiment=audio.sentiment,
            text=self._whole_text or "",
        )

    async def _process(self, clip: AudioClip) -> AudioClip:
        start = self.speech.clock.monotonic()
        try:
            processed = await self.speech.processor.process(clip, STREAM_PROCESSING)
        except Exception as error:
            self.run.failed("processing", "processing_failed")
            raise StepFailed("processing", "processing failed; try again later") from error
        self.run.record(
            AudioProcessed,
            gain_db=round(processed.gain_db, 3),
            trimmed_ms=round(processed.trimmed_ms, 3),
            latency_ms=self.run.since_ms(start),
        )
        return processed.clip

    async def _sentiment(self, text: str) -> Sentiment | None:
        if not text:
            return None
        sentiment, _ = await self.speech.analyse(text)
        return sentiment


def _silence(rate: int) -> bytes:
    return b"\x00\x00" * (rate * PAUSE_MS // 1000)


class StreamSpeech:
    """Opens speech streams, sharing providers, processing, cache and events with one-shot TTS."""

    def __init__(self, speech: SynthesizeSpeech) -> None:
        self.speech = speech

    def open(
        self,
        *,
        pipeline_id: str,
        transport: str,
        voice: str | None = None,
        use_cache: bool = True,
        text: str | None = None,
    ) -> SpeechStream:
        """A stream for `text` (whole, validated now) or for text sent later in pieces."""
        run = PipelineRun("tts", pipeline_id, self.speech.clock)
        run.record(RequestReceived, pipeline="tts", transport=transport, input_size=len(text or ""))
        try:
            stream = SpeechStream(self.speech, run, voice, use_cache)
            if text is not None:
                stream.speak_whole(normalize_text(text, self.speech.max_text_chars))
        except VoicePipeError as error:
            run.failed("validation", error.code)
            raise
        return stream

    async def close(self, stream: SpeechStream) -> None:
        await stream.run.flush(self.speech.events)
