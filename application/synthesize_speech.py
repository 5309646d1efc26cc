"""Use case: text in, cleaned-up encoded speech and the text's sentiment out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec

from application.pipeline_run import PipelineRun
from application.speech_pipeline import SpeechPipeline
from domain.errors import Busy, StepFailed, VoicePipeError
from domain.events import RequestReceived
from domain.speech import (
    AudioClip,
    AudioFormat,
    ProcessingSettings,
    Sentiment,
    SpeechRequest,
    Speed,
    SpokenAudio,
    check_length_for_speed,
    normalize_text,
)

Admit = Callable[[str], Awaitable[None]]


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


class SynthesizeSpeech:
    """Speak a text.

    Rules:
    - Text is normalized (NFC, collapsed whitespace); empty or over-long text is refused, and
      so is text that would make too much audio at a slow speed.
    - Providers are tried in order (see ProviderChain): a provider whose circuit is open is
      skipped, one that fails after its own retries hands the request to the next. The result
      says which provider and voice served it and whether that was a fallback.
    - The cache key covers text, provider, voice, format and processing settings, so entries
      never mix providers; each candidate's entry is looked up before calling it.
    - `use_cache: false` neither reads nor writes the cache; `refresh_cache` skips the
      lookup and overwrites the entry (forced regeneration).
    - `admit` (a charge) runs once every value is valid, with the normalized text, before
      any work: a refused request costs nothing, and a refusal by `admit` is recorded too.
    - Every step is recorded as a domain event, appended in one batch at the end.
    """

    def __init__(
        self, pipeline: SpeechPipeline, processing: ProcessingSettings | None = None
    ) -> None:
        self.pipeline = pipeline
        self.processing = processing or ProcessingSettings()

    @property
    def max_text_chars(self) -> int:
        return self.pipeline.max_text_chars

    def voices(self) -> dict[str, list[str]]:
        return self.pipeline.voices()

    async def execute(
        self,
        command: SpeakCommand,
        *,
        pipeline_id: str,
        transport: str,
        admit: Admit | None = None,
    ) -> SpeechResult:
        run = self.pipeline.run(pipeline_id)
        run.record(
            RequestReceived, pipeline="tts", transport=transport, input_size=len(command.text)
        )
        try:
            return await self._run(command, run, admit)
        finally:
            await run.flush(self.pipeline.events)

    async def _run(
        self, command: SpeakCommand, run: PipelineRun, admit: Admit | None
    ) -> SpeechResult:
        pipeline = self.pipeline
        try:
            text = normalize_text(command.text, pipeline.max_text_chars)
            Speed.parse(command.speed)
            check_length_for_speed(text, command.speed, pipeline.max_text_chars)
            audio_format = AudioFormat.parse(command.audio_format)
            candidates = pipeline.candidates(command.voice)
            if admit is not None:
                await admit(text)
        except VoicePipeError as error:
            run.failed("validation", error.code)
            raise
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
                fallback = candidate is not candidates[0]
                key = request.cache_key()
                if request.use_cache and not command.refresh_cache:
                    hit = await pipeline.lookup(key, run)
                    if hit is not None:
                        pipeline.fell_back(candidates[0], candidate, run)
                        latency = run.completed(cached=True)
                        return SpeechResult(text, hit, True, latency, fallback)
                if not pipeline.providers.allow(candidate.voice.provider, run):
                    continue
                if sentiment_task is None:
                    sentiment_task = asyncio.create_task(pipeline.analyse(text))
                try:
                    clip = await pipeline.providers.try_one(candidate, text, run, command.speed)
                except Busy as error:
                    run.failed("synthesis", error.code)
                    raise
                if clip is None:
                    continue
                pipeline.fell_back(candidates[0], candidate, run)
                audio = await self._finish(request, clip, run)
                sentiment, sentiment_ms = await sentiment_task
                pipeline.analysed(sentiment, sentiment_ms, run)
                audio = msgspec.structs.replace(audio, sentiment=sentiment)
                if request.use_cache:
                    await pipeline.store(key, audio, run)
                return SpeechResult(text, audio, False, run.completed(), fallback)
        finally:
            if sentiment_task is not None and not sentiment_task.done():
                sentiment_task.cancel()
        run.failed("synthesis", "synthesis_failed")
        raise StepFailed("synthesis", "no speech provider could speak this text; try again later")

    async def _finish(
        self, request: SpeechRequest, clip: AudioClip, run: PipelineRun
    ) -> SpokenAudio:
        processed = await self.pipeline.process(clip, request.processing, run)
        data = await self.pipeline.encode(processed, request.audio_format, run)
        return SpokenAudio(
            data=data,
            audio_format=request.audio_format,
            sample_rate=processed.sample_rate,
            duration_ms=round(processed.duration_ms, 3),
            voice=request.voice,
            sentiment=None,
        )
