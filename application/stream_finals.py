"""A stream's finals: one model job per utterance, emitted in utterance order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import msgspec

from application.ports import Transcriber, TranscriptionJob
from application.stream_audio import StreamAudio
from application.stream_events import EagerEndOfTurn, Emit, Failed, Final
from application.transcribe_audio import TranscribeAudio
from domain.errors import VoicePipeError
from domain.speech import AudioClip, Transcript, TranscriptionHints
from domain.turn_decisions import UtteranceEnded
from domain.turns import Turns

log = logging.getLogger(__name__)

BYTES_PER_SECOND = 32_000
Heard = tuple[Transcript, float]  # a final's transcript, and the model's time in ms


class _Pending(msgspec.Struct):
    ended: UtteranceEnded
    early: asyncio.Task[Heard] | None
    eager: float | None  # an eager end still to tell, with the turn model's probability


class StreamFinals:
    """Rules:
    - Each utterance's final is its early job (started at a pause) or, without one, a job
      started when the finals before it are out; finals are emitted in utterance order.
    - Segments and words are moved to stream time; the utterance is recorded (events,
      sentiment) with its model time and the wall time since its last speech.
    - A final that fails is a Failed (busy, model error) and the stream goes on; a transport
      that fails to render a final does not stop the later ones.
    """

    def __init__(
        self,
        *,
        transcriber: Transcriber,
        transcribe: TranscribeAudio,
        audio: StreamAudio,
        turns: Turns,
        emit: Emit,
        monotonic: Callable[[], float],
        stream_id: str,
        transport: str,
        language: str | None,
        hints: TranscriptionHints | None,
        model: str | None = None,
    ) -> None:
        self.model = model
        self.transcriber = transcriber
        self.transcribe = transcribe
        self.audio = audio
        self.turns = turns
        self.emit = emit
        self.monotonic = monotonic
        self.stream_id = stream_id
        self.transport = transport
        self.language = language
        self.hints = hints
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._finisher = asyncio.get_running_loop().create_task(self._emit_finals())

    def start_early(self, clip: AudioClip) -> asyncio.Task[Heard]:
        return asyncio.get_running_loop().create_task(self._model(clip))

    def put(
        self, ended: UtteranceEnded, early: asyncio.Task[Heard] | None, eager: float | None = None
    ) -> None:
        """`eager`: the utterance's eager end was not told yet; it goes out before its final."""
        self._queue.put_nowait(_Pending(ended, early, eager))

    async def finish(self) -> None:
        """Every final queued so far, out."""
        self._queue.put_nowait(None)
        await self._finisher

    def cancel(self) -> None:
        self._finisher.cancel()

    async def _model(self, clip: AudioClip) -> Heard:
        started = self.monotonic()
        job = TranscriptionJob(
            clip, self.language, kind="utterance", model=self.model, hints=self.hints
        )
        transcript = await self.transcriber.transcribe(job)
        return transcript, 1000 * (self.monotonic() - started)

    async def _emit_finals(self) -> None:
        while (item := await self._queue.get()) is not None:
            ended = item.ended
            clip = self.audio.clip(ended.start, ended.end)
            try:
                if item.early is not None and not item.early.cancelled():
                    transcript, model_ms = await item.early
                else:
                    transcript, model_ms = await self._model(clip)
                start, end = ended.start / BYTES_PER_SECOND, ended.end / BYTES_PER_SECOND
                heard = shifted(transcript, start)
                if item.eager is not None:
                    span = round(start, 3), round(end, 3)
                    await self._tell(EagerEndOfTurn(ended.utterance, *span, heard, item.eager))
                result = await self.transcribe.record_utterance(
                    clip,
                    heard,
                    model_ms,
                    pipeline_id=f"{self.stream_id}-{ended.utterance}",
                    transport=self.transport,
                    end_of_speech_ms=round(1000 * (self.monotonic() - ended.last_speech_at), 1),
                )
            except VoicePipeError as error:
                await self._failed(ended, error.code, error.message)
                continue
            except Exception:
                log.exception("utterance transcription failed")
                await self._failed(ended, "transcription_failed", "transcription failed")
                continue
            reason = self.turns.transcribed(ended.utterance)
            lag = round(1000 * (self.monotonic() - ended.last_speech_at), 1)
            final = Final(
                ended.utterance,
                round(start, 3),
                round(end, 3),
                result,
                lag,
                reason,
                ended.confidence,
            )
            await self._tell(final)

    async def _tell(self, event: Final | EagerEndOfTurn) -> None:
        try:
            await self.emit(event)
        except Exception:
            # A transport's rendering bug must not stop the finals of later utterances.
            log.exception("emitting a final failed")

    async def _failed(self, ended: UtteranceEnded, code: str, message: str) -> None:
        reason = self.turns.transcribed(ended.utterance)
        await self.emit(Failed(ended.utterance, code, message, reason))


def shifted(transcript: Transcript, seconds: float) -> Transcript:
    segments = tuple(
        msgspec.structs.replace(s, start=round(s.start + seconds, 3), end=round(s.end + seconds, 3))
        for s in transcript.segments
    )
    words = tuple(
        msgspec.structs.replace(w, start=round(w.start + seconds, 3), end=round(w.end + seconds, 3))
        for w in transcript.words
    )
    return msgspec.structs.replace(transcript, segments=segments, words=words)
