"""Use case: speak text piece by piece as it arrives, so audio starts before it is all said."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec

from application.pipeline_run import PipelineRun
from application.speech_pipeline import SpeechPipeline
from domain.errors import EmptyText, TextTooLong, VoicePipeError
from domain.events import AudioStreamed, RequestReceived
from domain.speech import (
    AudioFormat,
    ProcessingSettings,
    Sentiment,
    SpeechRequest,
    Speed,
    SpokenAudio,
    Voice,
    chars_allowed,
    check_length_for_speed,
    normalize_text,
)
from domain.text_pieces import complete_sentences, first_pieces, sentence_pieces, split_long

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
    text: str = ""  # the piece it speaks ("" for slices of cached audio)


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
    - A whole text given at once is looked up in the cache first and, once fully spoken, stored
      under a key of its own (never a one-shot format's), for the voice that actually spoke it.
    - Text sent in pieces is cleaned like a whole text (`normalize_text`), and all pieces
      together are bounded by `max_text_chars`.
    - `unspoken_chars` says how much of the text was never synthesized (cancelled, or lost
      to a failure): what its key is not charged for.
    """

    def __init__(
        self,
        pipeline: SpeechPipeline,
        run: PipelineRun,
        voice: str | None,
        use_cache: bool,
        speed: float = 1.0,
    ) -> None:
        self.pipeline = pipeline
        self.run = run
        self.candidates = pipeline.candidates(voice)
        self.use_cache = use_cache
        self.speed = speed
        self._buffer = ""
        self._spoken: list[str] = []
        self._pieces: asyncio.Queue[tuple[str, bool] | None] = asyncio.Queue()  # (text, joins)
        self._whole_text: str | None = None
        self._received = 0  # characters of text sent in pieces
        self._lost = 0  # characters of pieces whose synthesis failed
        self.cancelled = False

    def check_text(self, text: str) -> None:
        """Raises TextTooLong if `text` would take the stream past `max_text_chars`."""
        limit = chars_allowed(self.pipeline.max_text_chars, self.speed)  # as for whole texts
        if self._received + len(text) > limit:
            raise TextTooLong(
                f"this stream's text would have {self._received + len(text)} characters; "
                f"the limit is {limit}"
            )

    def add_text(self, text: str) -> None:
        self.check_text(text)
        self._received += len(text)
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
        for pieces in sentence_pieces(text):
            for index, piece in enumerate(pieces):
                self._pieces.put_nowait((piece, index > 0))
        self._pieces.put_nowait(None)

    def cancel(self) -> None:
        self.cancelled = True
        self._pieces.put_nowait(None)

    @property
    def whole_text(self) -> str | None:
        """The text given whole, as normalized (None for a stream of pieces)."""
        return self._whole_text

    def unspoken_chars(self) -> int:
        """Text queued, buffered or failed that no audio was made of (once the stream ended)."""
        queued = [item[0] for item in self._pieces._queue if item is not None]  # type: ignore[attr-defined]
        # Each piece with the space before it (normalized to single spaces); the buffer as
        # received: a key is not charged for the spaces of text never spoken either.
        return sum(len(piece) + 1 for piece in queued) + len(self._buffer) + self._lost

    def _queue(self, sentence: str) -> None:
        first = not self._spoken and self._pieces.empty()
        joins = False  # the first piece of a sentence comes after a pause, the others do not
        for piece in first_pieces(sentence) if first else split_long(sentence):
            try:
                # Already counted against the limit; NFC may lengthen it (at most 3x).
                text = normalize_text(piece, 3 * self.pipeline.max_text_chars)
            except EmptyText:
                continue  # only unspeakable characters
            self._pieces.put_nowait((text, joins))
            joins = True

    def _key(self, text: str, voice: Voice) -> str:
        """Streamed audio (pieces joined by pauses) is never a one-shot `pcm` entry."""
        request = SpeechRequest(
            text=text,
            voice=voice,
            audio_format=AudioFormat.PCM,
            processing=STREAM_PROCESSING,
            speed=self.speed,
        )
        return "tts:stream:" + request.cache_key().removeprefix("tts:")

    async def items(self) -> AsyncIterator[StreamItem]:
        """Start, then chunks, then a finish with totals (also after a cancel)."""
        cached = await self._cached()
        if cached is not None:
            while not self._pieces.empty():  # all of it is in the cached audio
                self._pieces.get_nowait()
            async for item in self._replay(cached):
                yield item
            return
        seq, first_ms, pcm = 0, 0.0, bytearray()
        rate, served, mixed = 0, None, False
        candidates = self.candidates
        while not self.cancelled:
            queued = await self._pieces.get()
            if queued is None or self.cancelled:
                break
            piece, joins = queued
            self._spoken.append(piece)
            try:
                candidate, clip = await self.pipeline.speak(candidates, piece, self.run, self.speed)
            except BaseException:
                self._lost += len(piece) + 1
                raise
            clip = await self.pipeline.process(clip, STREAM_PROCESSING, self.run)
            if served is None:
                served, rate = candidate, clip.sample_rate
                first_ms = self.run.elapsed_ms()
                fallback = candidate.voice.provider != self.candidates[0].voice.provider
                yield StreamStarted(rate, served.voice.provider, served.voice.name, False, fallback)
                # The voice that started keeps the stream while it can: one voice throughout.
                candidates = [served, *(c for c in candidates if c is not served)]
            elif candidate is not served or clip.sample_rate != rate:
                mixed = True  # another voice took over mid-stream: not one voice's audio
            chunk = clip.pcm if seq == 0 or joins else _silence(rate) + clip.pcm
            pcm += chunk
            yield StreamChunk(seq, chunk, piece)
            seq += 1
        # A whole text is cached under the text as asked; a cancelled one says what was spoken.
        whole = self._whole_text is not None and not self.cancelled
        text = self._whole_text if whole and self._whole_text else " ".join(self._spoken)
        sentiment = await self._sentiment(text)
        self.run.record(
            AudioStreamed,
            chunks=seq,
            first_chunk_ms=first_ms,
            audio_ms=round(1000 * len(pcm) / 2 / rate, 3) if rate else 0.0,
            cancelled=self.cancelled,
        )
        if served is not None and not (self.cancelled or mixed) and self.use_cache and text:
            duration_ms = round(1000 * len(pcm) / 2 / rate, 3)
            audio = SpokenAudio(
                bytes(pcm), AudioFormat.PCM, rate, duration_ms, served.voice, sentiment
            )
            await self.pipeline.store(self._key(text, served.voice), audio, self.run)
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
        """The first candidate voice that has this text, in the order they would be tried."""
        if self._whole_text is None or not self.use_cache:
            return None
        for candidate in self.candidates:
            hit = await self.pipeline.lookup(self._key(self._whole_text, candidate.voice), self.run)
            if hit is not None:
                return hit
        return None

    async def _replay(self, audio: SpokenAudio) -> AsyncIterator[StreamItem]:
        voice = audio.voice
        fallback = voice.provider != self.candidates[0].voice.provider
        yield StreamStarted(audio.sample_rate, voice.provider, voice.name, True, fallback)
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

    async def _sentiment(self, text: str) -> Sentiment | None:
        if not text:
            return None
        sentiment, latency_ms = await self.pipeline.analyse(text)
        self.pipeline.analysed(sentiment, latency_ms, self.run)
        return sentiment


def _silence(rate: int) -> bytes:
    return b"\x00\x00" * (rate * PAUSE_MS // 1000)


class StreamSpeech:
    """Opens speech streams, sharing the speech pipeline with one-shot synthesis."""

    def __init__(self, pipeline: SpeechPipeline) -> None:
        self.pipeline = pipeline

    async def open(
        self,
        *,
        pipeline_id: str,
        transport: str,
        voice: str | None = None,
        use_cache: bool = True,
        text: str | None = None,
        speed: float = 1.0,
    ) -> SpeechStream:
        """A stream for `text` (whole, validated now) or for text sent later in pieces; a
        refused one is recorded as failed."""
        run = self.pipeline.run(pipeline_id)
        run.record(RequestReceived, pipeline="tts", transport=transport, input_size=len(text or ""))
        try:
            Speed.parse(speed)
            stream = SpeechStream(self.pipeline, run, voice, use_cache, speed)
            if text is not None:
                whole = normalize_text(text, self.pipeline.max_text_chars)
                check_length_for_speed(whole, speed, self.pipeline.max_text_chars)
                stream.speak_whole(whole)
        except VoicePipeError as error:
            run.failed("validation", error.code)
            await run.flush(self.pipeline.events)
            raise
        return stream

    async def close(self, stream: SpeechStream) -> None:
        await stream.run.flush(self.pipeline.events)
