"""Use case: text in, cleaned-up encoded speech and the text's sentiment out."""

from __future__ import annotations

import asyncio
import logging

import msgspec

from application.pipeline_run import PipelineRun
from application.ports import (
    AudioCache,
    AudioCodec,
    AudioProcessor,
    Clock,
    EventLog,
    SentimentAnalyzer,
)
from application.provider_chain import Candidate, ProviderChain
from domain.errors import Busy, StepFailed, VoicePipeError
from domain.events import (
    AudioEncoded,
    AudioProcessed,
    CacheLookedUp,
    ProviderFellBack,
    RequestReceived,
    SentimentAnalysed,
    StepDegraded,
)
from domain.speech import (
    AudioClip,
    AudioFormat,
    ProcessingSettings,
    Sentiment,
    SpeechRequest,
    SpokenAudio,
    normalize_text,
)

log = logging.getLogger(__name__)


class SpeakCommand(msgspec.Struct, frozen=True):
    """What a caller asks for, before validation."""

    text: str
    voice: str | None = None
    audio_format: str = "wav"
    use_cache: bool = True
    refresh_cache: bool = False  # synthesize anew and overwrite the cached entry
    speed: float = 1.0


class SpeechResult(msgspec.Struct, frozen=True):
    text: str  # as normalized and spoken
    audio: SpokenAudio
    cached: bool
    latency_ms: float
    fallback: bool = False  # served by a later provider than the one first in line


_cache_entry_decoder = msgspec.msgpack.Decoder(SpokenAudio)


class SynthesizeSpeech:
    """Speak a text.

    Rules:
    - Text is normalized (NFC, collapsed whitespace); empty or over-long text is refused.
    - Providers are tried in order (see ProviderChain): a provider whose circuit is open is
      skipped, one that fails after its own retries hands the request to the next. The result
      says which provider and voice served it and whether that was a fallback.
    - The cache key covers text, provider, voice, format and processing settings, so entries
      never mix providers; each candidate's entry is looked up before calling it.
    - `use_cache: false` neither reads nor writes the cache; `refresh_cache` skips the
      lookup and overwrites the entry (forced regeneration).
    - A cache failure never fails the request: it is bypassed and recorded as degraded.
    - Sentiment is optional: if it fails, the audio is still returned without it.
    - Every step is recorded as a domain event, appended in one batch at the end.
    """

    def __init__(
        self,
        *,
        providers: ProviderChain,
        processor: AudioProcessor,
        codec: AudioCodec,
        sentiment: SentimentAnalyzer,
        cache: AudioCache,
        events: EventLog,
        clock: Clock,
        max_text_chars: int,
        processing: ProcessingSettings | None = None,
    ) -> None:
        self.providers = providers
        self.processor = processor
        self.codec = codec
        self.sentiment = sentiment
        self.cache = cache
        self.events = events
        self.clock = clock
        self.max_text_chars = max_text_chars
        self.processing = processing or ProcessingSettings()

    def voices(self) -> dict[str, list[str]]:
        return {s.provider: list(s.voices()) for s in self.providers.synthesizers}

    async def execute(
        self, command: SpeakCommand, *, pipeline_id: str, transport: str
    ) -> SpeechResult:
        run = PipelineRun("tts", pipeline_id, self.clock)
        run.record(
            RequestReceived, pipeline="tts", transport=transport, input_size=len(command.text)
        )
        try:
            return await self._run(command, run)
        finally:
            await run.flush(self.events)

    async def _run(self, command: SpeakCommand, run: PipelineRun) -> SpeechResult:
        try:
            text = normalize_text(command.text, self.max_text_chars)
            audio_format = AudioFormat.parse(command.audio_format)
            candidates = self.providers.candidates(command.voice)
        except VoicePipeError as error:
            run.failed("validation", error.code)
            raise
        primary = candidates[0].voice.provider
        sentiment_task: asyncio.Task[tuple[Sentiment | None, float]] | None = None
        try:
            for candidate in candidates:
                request = SpeechRequest(
                    text=text,
                    voice=candidate.voice,
                    audio_format=audio_format,
                    processing=self.processing,
                    use_cache=command.use_cache,
                    speed=command.speed,
                )
                fallback = candidate.voice.provider != primary
                key = request.cache_key()
                if request.use_cache and not command.refresh_cache:
                    hit = await self.lookup(key, run)
                    if hit is not None:
                        self._fell_back(primary, candidate, run)
                        latency = run.completed(cached=True)
                        return SpeechResult(text, hit, True, latency, fallback)
                if not self.providers.allow(candidate.voice.provider, run):
                    continue
                if sentiment_task is None:
                    sentiment_task = asyncio.create_task(self.analyse(text))
                try:
                    clip = await self.providers.try_one(candidate, text, run, command.speed)
                except Busy as error:
                    run.failed("synthesis", error.code)
                    raise
                if clip is None:
                    continue
                self._fell_back(primary, candidate, run)
                audio = await self._finish(request, clip, run)
                sentiment, sentiment_ms = await sentiment_task
                if sentiment is None:
                    run.record(StepDegraded, step="sentiment", code="sentiment_failed")
                else:
                    run.record(SentimentAnalysed, label=sentiment.label, latency_ms=sentiment_ms)
                audio = msgspec.structs.replace(audio, sentiment=sentiment)
                if request.use_cache:
                    await self.store(key, audio, run)
                return SpeechResult(text, audio, False, run.completed(), fallback)
        finally:
            if sentiment_task is not None and not sentiment_task.done():
                sentiment_task.cancel()
        run.failed("synthesis", "synthesis_failed")
        raise StepFailed("synthesis", "no speech provider could speak this text; try again later")

    @staticmethod
    def _fell_back(primary: str, candidate: Candidate, run: PipelineRun) -> None:
        if candidate.voice.provider != primary:
            run.record(
                ProviderFellBack, from_provider=primary, to_provider=candidate.voice.provider
            )

    async def lookup(self, key: str, run: PipelineRun) -> SpokenAudio | None:
        start = self.clock.monotonic()
        try:
            raw = await self.cache.get(key)
            hit = _cache_entry_decoder.decode(raw) if raw is not None else None
        except Exception:
            log.warning("cache lookup failed; bypassing the cache", exc_info=True)
            run.record(StepDegraded, step="cache", code="cache_unavailable")
            return None
        run.record(CacheLookedUp, hit=hit is not None, latency_ms=run.since_ms(start))
        return hit

    async def store(self, key: str, audio: SpokenAudio, run: PipelineRun) -> None:
        try:
            await self.cache.put(key, msgspec.msgpack.encode(audio))
        except Exception:
            log.warning("cache store failed", exc_info=True)
            run.record(StepDegraded, step="cache", code="cache_unavailable")

    async def analyse(self, text: str) -> tuple[Sentiment | None, float]:
        start = self.clock.monotonic()
        try:
            sentiment = await self.sentiment.analyse(text)
        except Exception:
            log.warning("sentiment analysis failed", exc_info=True)
            return None, 0.0
        return sentiment, round(1000.0 * (self.clock.monotonic() - start), 3)

    async def _finish(
        self, request: SpeechRequest, clip: AudioClip, run: PipelineRun
    ) -> SpokenAudio:
        """Processing and encoding: failures here are ours, not the provider's."""
        step = "processing"
        try:
            start = self.clock.monotonic()
            processed = await self.processor.process(clip, request.processing)
            run.record(
                AudioProcessed,
                gain_db=round(processed.gain_db, 3),
                trimmed_ms=round(processed.trimmed_ms, 3),
                latency_ms=run.since_ms(start),
            )
            step = "encoding"
            start = self.clock.monotonic()
            data = await self.codec.encode(processed.clip, request.audio_format)
            run.record(
                AudioEncoded,
                audio_format=request.audio_format.value,
                size=len(data),
                latency_ms=run.since_ms(start),
            )
        except VoicePipeError as error:
            run.failed(step, error.code)
            raise
        except Exception as error:
            log.exception("%s failed", step)
            run.failed(step, f"{step}_failed")
            raise StepFailed(step, f"{step} failed; try again later") from error
        return SpokenAudio(
            data=data,
            audio_format=request.audio_format,
            sample_rate=processed.clip.sample_rate,
            duration_ms=round(processed.clip.duration_ms, 3),
            voice=request.voice,
            sentiment=None,
        )
