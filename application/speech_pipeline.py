"""The steps every synthesis shares, one-shot or streamed: providers, clean-up, encoding,
cache and sentiment, each recording its domain event on the run."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

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
from domain.errors import StepFailed, VoicePipeError
from domain.events import (
    AudioEncoded,
    AudioProcessed,
    CacheLookedUp,
    ProviderFellBack,
    SentimentAnalysed,
    StepDegraded,
)
from domain.speech import AudioClip, AudioFormat, ProcessingSettings, Sentiment, SpokenAudio

log = logging.getLogger(__name__)

T = TypeVar("T")

_cache_entry_decoder = msgspec.msgpack.Decoder(SpokenAudio)


class SpeechPipeline:
    """Shared synthesis steps.

    Rules:
    - A cache failure never fails a request: it is bypassed and recorded as degraded.
    - Sentiment is optional: if it fails, the audio is still returned without it.
    - Processing and encoding failures are ours (`processing_failed`, `encoding_failed`), not
      the provider's.
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
    ) -> None:
        self.providers = providers
        self.processor = processor
        self.codec = codec
        self.sentiment = sentiment
        self.cache = cache
        self.events = events
        self.clock = clock
        self.max_text_chars = max_text_chars

    def run(self, pipeline_id: str) -> PipelineRun:
        return PipelineRun("tts", pipeline_id, self.clock)

    def candidates(self, voice: str | None) -> list[Candidate]:
        return self.providers.candidates(voice)

    def voices(self) -> dict[str, list[str]]:
        return {s.provider: list(s.voices()) for s in self.providers.synthesizers}

    async def speak(
        self, candidates: list[Candidate], text: str, run: PipelineRun, speed: float = 1.0
    ) -> tuple[Candidate, AudioClip]:
        """The first provider that can speak `text`, falling back in order."""
        spoken = await self.providers.first_available(candidates, text, run, speed)
        if spoken is None:
            run.failed("synthesis", "synthesis_failed")
            raise StepFailed("synthesis", "no speech provider could speak this text")
        self.fell_back(candidates[0], spoken[0], run)
        return spoken

    @staticmethod
    def fell_back(primary: Candidate, served: Candidate, run: PipelineRun) -> None:
        if served.voice.provider != primary.voice.provider:
            run.record(
                ProviderFellBack,
                from_provider=primary.voice.provider,
                to_provider=served.voice.provider,
            )

    async def lookup(self, key: str, run: PipelineRun) -> SpokenAudio | None:
        start = self.clock.monotonic()
        try:
            raw = await self.cache.get(key)
            hit = _cache_entry_decoder.decode(raw) if raw is not None else None
        except ConnectionError:  # known to be away: said once where it went, not per request
            log.debug("cache away; bypassing it")
            run.record(StepDegraded, step="cache", code="cache_unavailable")
            return None
        except Exception:
            log.warning("cache lookup failed; bypassing the cache", exc_info=True)
            run.record(StepDegraded, step="cache", code="cache_unavailable")
            return None
        run.record(CacheLookedUp, hit=hit is not None, latency_ms=run.since_ms(start))
        return hit

    async def store(self, key: str, audio: SpokenAudio, run: PipelineRun) -> None:
        try:
            await self.cache.put(key, msgspec.msgpack.encode(audio))
        except Exception as error:
            if isinstance(error, ConnectionError):  # away: the link said so once
                log.debug("cache away; not stored")
            else:
                log.warning("cache store failed", exc_info=True)
            run.record(StepDegraded, step="cache", code="cache_unavailable")

    async def analyse(self, text: str) -> tuple[Sentiment | None, float]:
        """Sentiment and its latency; (None, 0) when it failed."""
        start = self.clock.monotonic()
        try:
            sentiment = await self.sentiment.analyse(text)
        except Exception:
            log.warning("sentiment analysis failed", exc_info=True)
            return None, 0.0
        return sentiment, round(1000.0 * (self.clock.monotonic() - start), 3)

    @staticmethod
    def analysed(sentiment: Sentiment | None, latency_ms: float, run: PipelineRun) -> None:
        if sentiment is None:
            run.record(StepDegraded, step="sentiment", code="sentiment_failed")
        else:
            run.record(SentimentAnalysed, label=sentiment.label, latency_ms=latency_ms)

    async def process(
        self, clip: AudioClip, settings: ProcessingSettings, run: PipelineRun
    ) -> AudioClip:
        start = self.clock.monotonic()
        processed = await self._step("processing", self.processor.process(clip, settings), run)
        run.record(
            AudioProcessed,
            gain_db=round(processed.gain_db, 3),
            trimmed_ms=round(processed.trimmed_ms, 3),
            latency_ms=run.since_ms(start),
        )
        return processed.clip

    async def encode(self, clip: AudioClip, audio_format: AudioFormat, run: PipelineRun) -> bytes:
        start = self.clock.monotonic()
        data = await self._step("encoding", self.codec.encode(clip, audio_format), run)
        run.record(
            AudioEncoded,
            audio_format=audio_format.value,
            size=len(data),
            latency_ms=run.since_ms(start),
        )
        return data

    @staticmethod
    async def _step(step: str, work: Awaitable[T], run: PipelineRun) -> T:
        """Our own step: its failure is recorded as `<step>_failed`, not blamed on a provider."""
        try:
            return await work
        except VoicePipeError as error:
            run.failed(step, error.code)
            raise
        except Exception as error:
            log.exception("%s failed", step)
            run.failed(step, f"{step}_failed")
            raise StepFailed(step, f"{step} failed; try again later") from error
