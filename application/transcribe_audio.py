"""Use case: audio in any common format in, transcript with sentiment out."""

from __future__ import annotations

import logging

import msgspec

from application.allowance import Allowance
from application.pipeline_run import PipelineRun
from application.ports import (
    AudioCodec,
    Clock,
    EventLog,
    Progress,
    SentimentAnalyzer,
    Transcriber,
    TranscriptionJob,
)
from domain.errors import AudioTooLarge, AudioTooLong, InvalidAudio, StepFailed, VoicePipeError
from domain.events import (
    AudioDecoded,
    RequestReceived,
    SentimentAnalysed,
    SpeechTranscribed,
    StepDegraded,
)
from domain.speech import AudioClip, Sentiment, Transcript, TranscriptionHints

log = logging.getLogger(__name__)

WHISPER_SAMPLE_RATE = 16_000


class TranscriptionResult(msgspec.Struct, frozen=True):
    transcript: Transcript
    sentiment: Sentiment | None
    latency_ms: float


class TranscribeAudio:
    """Transcribe one recording.

    Rules:
    - Audio over `max_audio_bytes`, or longer than `max_audio_seconds` once decoded, is refused.
    - Bytes that do not decode as audio (or are truncated) are refused as invalid audio.
    - Audio is decoded in memory and resampled to 16 kHz mono for the model.
    - Its seconds are reserved from the caller's allowance once decoded, before the model
      runs, and given back if transcription fails: the key pays for what was transcribed.
    - Silence gives an empty transcript (voice activity detection drops it), never invented words.
    - Sentiment of the transcript is optional: if it fails, the transcript is still returned.
    """

    def __init__(
        self,
        *,
        transcriber: Transcriber,
        codec: AudioCodec,
        sentiment: SentimentAnalyzer,
        events: EventLog,
        clock: Clock,
        max_audio_bytes: int,
        max_audio_seconds: float,
    ) -> None:
        self.transcriber = transcriber
        self.codec = codec
        self.sentiment = sentiment
        self.events = events
        self.clock = clock
        self.max_audio_bytes = max_audio_bytes
        self.max_audio_seconds = max_audio_seconds

    async def execute(
        self,
        audio: bytes,
        language: str | None,
        *,
        pipeline_id: str,
        transport: str,
        progress: Progress | None = None,
        model: str | None = None,
        task: str = "transcribe",
        hints: TranscriptionHints | None = None,
        allowance: Allowance | None = None,
    ) -> TranscriptionResult:
        run = PipelineRun("stt", pipeline_id, self.clock)
        run.record(RequestReceived, pipeline="stt", transport=transport, input_size=len(audio))
        try:
            return await self._run(audio, language, run, progress, model, task, hints, allowance)
        finally:
            await run.flush(self.events)

    async def _run(
        self,
        audio: bytes,
        language: str | None,
        run: PipelineRun,
        progress: Progress | None,
        model: str | None = None,
        task: str = "transcribe",
        hints: TranscriptionHints | None = None,
        allowance: Allowance | None = None,
    ) -> TranscriptionResult:
        step = "validation"
        try:
            self._check_size(audio)
            step = "decoding"
            start = self.clock.monotonic()
            clip = await self.codec.decode(audio, WHISPER_SAMPLE_RATE)
            if clip.duration_ms > 1000.0 * self.max_audio_seconds:
                raise AudioTooLong(
                    f"audio lasts {clip.duration_ms / 1000:.1f} s; "
                    f"the limit is {self.max_audio_seconds:g} s"
                )
            run.record(
                AudioDecoded,
                size=len(audio),
                audio_ms=round(clip.duration_ms, 3),
                latency_ms=run.since_ms(start),
            )
            step = "quota"
            if allowance is not None:
                await allowance.reserve(clip.duration_ms / 1000)
            step = "transcription"
            start = self.clock.monotonic()
            try:
                job = TranscriptionJob(clip, language, model=model, task=task, hints=hints)
                transcript = await self.transcriber.transcribe(job, progress)
            except BaseException:
                if allowance is not None:
                    allowance.unuse(allowance.used)
                    await allowance.settle()
                raise
            self._transcribed(run, clip, transcript, run.since_ms(start), model)
        except VoicePipeError as error:
            run.failed(step, error.code)
            raise
        except Exception as error:
            log.exception("%s failed", step)
            run.failed(step, f"{step}_failed")
            raise StepFailed(step, f"{step} failed; try again later") from error
        sentiment = await self._analyse(transcript.text, run)
        return TranscriptionResult(
            transcript=transcript, sentiment=sentiment, latency_ms=run.completed()
        )

    async def record_utterance(
        self,
        clip: AudioClip,
        transcript: Transcript,
        model_ms: float,
        *,
        pipeline_id: str,
        transport: str,
        end_of_speech_ms: float | None = None,
    ) -> TranscriptionResult:
        """Events and sentiment for an utterance transcribed by a stream (audio was already PCM)."""
        run = PipelineRun("stt", pipeline_id, self.clock)
        run.started -= model_ms / 1000  # the utterance's latency includes its transcription
        run.record(RequestReceived, pipeline="stt", transport=transport, input_size=len(clip.pcm))
        self._transcribed(run, clip, transcript, round(model_ms, 3), None, end_of_speech_ms)
        try:
            sentiment = await self._analyse(transcript.text, run)
            return TranscriptionResult(transcript, sentiment, run.completed())
        finally:
            await run.flush(self.events)

    def _transcribed(
        self,
        run: PipelineRun,
        clip: AudioClip,
        transcript: Transcript,
        latency_ms: float,
        model: str | None = None,
        end_of_speech_ms: float | None = None,
    ) -> None:
        run.record(
            SpeechTranscribed,
            model=model or self.transcriber.model_name,
            language=transcript.language,
            language_probability=round(transcript.language_probability, 4),
            audio_ms=round(clip.duration_ms, 3),
            latency_ms=latency_ms,
            segments=len(transcript.segments),
            end_of_speech_ms=end_of_speech_ms,
        )

    def _check_size(self, audio: bytes) -> None:
        if not audio:
            raise InvalidAudio("audio is empty")
        if len(audio) > self.max_audio_bytes:
            raise AudioTooLarge(
                f"audio has {len(audio)} bytes; the limit is {self.max_audio_bytes}"
            )

    async def _analyse(self, text: str, run: PipelineRun) -> Sentiment | None:
        start = self.clock.monotonic()
        try:
            sentiment = await self.sentiment.analyse(text)
        except Exception:
            log.warning("sentiment analysis failed", exc_info=True)
            run.record(StepDegraded, step="sentiment", code="sentiment_failed")
            return None
        run.record(SentimentAnalysed, label=sentiment.label, latency_ms=run.since_ms(start))
        return sentiment
