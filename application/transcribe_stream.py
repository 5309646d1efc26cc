"""Use case: transcripts while the user speaks, from a stream of 16 kHz PCM frames."""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec

from application.ports import Clock, Transcriber, TranscriptionJob, TurnDetector, VadSession
from application.stream_events import (
    Emit,
    EndReason,
    Failed,
    Final,
    Partial,
    SpeechStarted,
    SpeechStopped,
    StreamEvent,
)
from application.transcribe_audio import TranscribeAudio
from domain.errors import Busy, VoicePipeError
from domain.speech import AudioClip, Transcript, TranscriptionHints
from domain.turn_decisions import (
    CancelDraft,
    CancelFinal,
    CancelTurnCheck,
    Decision,
    Forget,
    SpeechBegan,
    StartDraft,
    StartFinal,
    StartTurnCheck,
    UtteranceEnded,
)
from domain.turns import BYTES_PER_MS, WINDOW_BYTES, Turns
from domain.utterances import Endpointing

__all__ = [
    "Emit",
    "EndReason",
    "Failed",
    "Final",
    "Partial",
    "SpeechStarted",
    "SpeechStopped",
    "StreamEvent",
    "UtteranceStream",
]

log = logging.getLogger(__name__)

RATE = 16_000
FEED_BYTES = 8 * WINDOW_BYTES  # 256 ms: the most audio taken in before cuts are checked

Heard = tuple[Transcript, float]  # a final's transcript, and the model's time in ms


class _Pending(msgspec.Struct):
    ended: UtteranceEnded
    early: asyncio.Task[Heard] | None


class UtteranceStream:
    """One speaker's stream: voice activity cuts utterances; each gets partials and a final.

    The rules of when to cut and what to transcribe are domain/turns.py's (Turns); this
    runs the VAD, the jobs Turns asks for, and emits the session events in order:
    - Drafts give way when the model is busy (they are skipped, never queued behind finals);
      a draft's Partial is dropped when its utterance ended meanwhile.
    - Finals are emitted in utterance order, with segments (and, with `words`, word
      timings) moved to stream time; a final that fails is a Failed, and the stream goes on.
    - A turn model that fails leaves the cut to the silence endpoint.
    """

    def __init__(
        self,
        *,
        transcriber: Transcriber,
        transcribe: TranscribeAudio,
        vad: VadSession,
        emit: Emit,
        stream_id: str,
        language: str | None,
        partial_ms: int = 500,
        policy: Endpointing | None = None,
        transport: str = "ws-stream",
        clock: Clock | None = None,
        manual: bool = False,
        prompt: str | None = None,
        words: bool = False,
        turns: TurnDetector | None = None,
    ) -> None:
        self.transcriber = transcriber
        self.transcribe = transcribe
        self.vad = vad
        self.emit = emit
        self.stream_id = stream_id
        self.language = language
        self.transport = transport
        self.hints = TranscriptionHints(prompt=prompt, words=words) if prompt or words else None
        self._draft_hints = TranscriptionHints(prompt=prompt) if prompt else None  # no timing
        self._monotonic = clock.monotonic if clock is not None else time.monotonic
        self.turns = Turns(policy, partial_ms=partial_ms, manual=manual, judge=turns is not None)
        self.turn_model = turns
        self._notices: list[StreamEvent] = []
        self._audio = bytearray()  # since `_offset` bytes into the stream
        self._offset = 0
        self._draft: asyncio.Task[None] | None = None
        self._early: tuple[int, asyncio.Task[Heard]] | None = None
        self._check: tuple[int, asyncio.Task[float]] | None = None
        self._finals: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._finisher = asyncio.get_running_loop().create_task(self._emit_finals())

    async def feed(self, pcm: bytes) -> None:
        """Audio in; a big frame is taken a window batch at a time, so the utterance cut and
        the drafts happen where they would for small frames."""
        for at in range(0, len(pcm), FEED_BYTES):
            self._audio += pcm[at : at + FEED_BYTES]
            self._collect()
            probabilities = self.vad.probabilities(pcm[at : at + FEED_BYTES])
            self._act(self.turns.heard(probabilities, self._monotonic(), len(pcm)))
            await self._notify()

    async def end_utterance(self) -> bool:
        """Close the utterance in progress now (the client's commit); False if there was none."""
        return await self._end("client")

    async def finalize(self) -> bool:
        """Close the utterance in progress now; with none, the last final still to come says
        the client ended it. False if there is neither."""
        decisions = self.turns.finalize()
        self._act(decisions)
        await self._notify()
        return bool(decisions)

    def clear(self) -> None:
        """Drop the utterance in progress: no final for it."""
        self._act(self.turns.clear())

    async def close(self, finish: bool) -> None:
        if finish:
            await self._end("stream_end")
            self._finals.put_nowait(None)
            await self._finisher
        else:
            self._finisher.cancel()
            if self._draft is not None:
                self._draft.cancel()
            if self._early is not None:
                self._early[1].cancel()
            if self._check is not None:
                self._check[1].cancel()

    async def _end(self, reason: EndReason) -> bool:
        decisions = self.turns.end_utterance(reason)
        self._act(decisions)
        await self._notify()
        return any(isinstance(d, UtteranceEnded) for d in decisions)

    def _collect(self) -> None:
        """Tell Turns which of its jobs finished since the last audio (it acts on them at the
        next window, as it would on a window's probability)."""
        if self._draft is not None and self._draft.done():
            self._draft = None
            self.turns.draft_done()
        if self._check is not None and self._check[1].done():
            (check, task), self._check = self._check, None
            if not task.cancelled():
                self.turns.judged(check, None if task.exception() else task.result())

    def _act(self, decisions: list[Decision]) -> None:
        loop = asyncio.get_running_loop()
        for decision in decisions:
            match decision:
                case SpeechBegan(utterance, start):
                    self._notices.append(SpeechStarted(utterance, start // BYTES_PER_MS))
                case StartDraft(utterance, start, end):
                    partial = self._partial(self._clip(start, end), utterance, start)
                    self._draft = loop.create_task(partial)
                case CancelDraft() if self._draft is not None:
                    self._draft.cancel()
                case StartFinal(job, start, end):
                    self._early = (job, loop.create_task(self._model(self._clip(start, end))))
                case CancelFinal(job) if self._early is not None and self._early[0] == job:
                    self._early[1].cancel()
                    self._early = None
                case StartTurnCheck(check, start, end):
                    self._check = (check, loop.create_task(self._judge(self._clip(start, end))))
                case CancelTurnCheck(check) if self._check is not None and self._check[0] == check:
                    self._check[1].cancel()
                    self._check = None
                case UtteranceEnded() as ended:
                    self._finals.put_nowait(_Pending(ended, self._handed_over(ended.early)))
                    start_ms, end_ms = ended.start // BYTES_PER_MS, ended.closed_at // BYTES_PER_MS
                    self._notices.append(
                        SpeechStopped(ended.utterance, ended.reason, start_ms, end_ms)
                    )
                case Forget(before) if before > self._offset:
                    del self._audio[: before - self._offset]
                    self._offset = before

    def _handed_over(self, job: int | None) -> asyncio.Task[Heard] | None:
        if job is None or self._early is None or self._early[0] != job:
            return None
        (_, task), self._early = self._early, None
        return task

    async def _notify(self) -> None:
        notices, self._notices = self._notices, []
        for notice in notices:
            await self.emit(notice)

    def _clip(self, start: int, end: int) -> AudioClip:
        return AudioClip(bytes(self._audio[start - self._offset : end - self._offset]), RATE)

    async def _model(self, clip: AudioClip) -> Heard:
        started = self._monotonic()
        job = TranscriptionJob(clip, self.language, kind="utterance", hints=self.hints)
        transcript = await self.transcriber.transcribe(job)
        return transcript, 1000 * (self._monotonic() - started)

    async def _judge(self, clip: AudioClip) -> float:
        """The turn model's probability that the sentence is finished."""
        assert self.turn_model is not None
        try:
            return await self.turn_model.complete(clip.pcm)
        except Exception:
            log.warning("the turn model failed; waiting for silence instead", exc_info=True)
            raise

    async def _partial(self, clip: AudioClip, utterance: int, start: int) -> None:
        job = TranscriptionJob(clip, self.language, kind="draft", hints=self._draft_hints)
        try:
            transcript = await self.transcriber.transcribe(job)
        except Busy:
            return  # drafts give way to finals
        except Exception:
            log.warning("a partial transcription failed", exc_info=True)
            return  # a draft is optional: the final will say what was heard
        if utterance == self.turns.utterance and transcript.text:  # it is still going
            audio_ms = round(clip.duration_ms, 1)
            await self.emit(Partial(utterance, transcript.text, audio_ms, start // BYTES_PER_MS))

    async def _emit_finals(self) -> None:
        while (item := await self._finals.get()) is not None:
            ended = item.ended
            clip = self._clip(ended.start, ended.end)
            try:
                if item.early is not None and not item.early.cancelled():
                    transcript, model_ms = await item.early
                else:
                    transcript, model_ms = await self._model(clip)
                start, end = ended.start / (RATE * 2), ended.end / (RATE * 2)
                result = await self.transcribe.record_utterance(
                    clip,
                    _shifted(transcript, start),
                    model_ms,
                    pipeline_id=f"{self.stream_id}-{ended.utterance}",
                    transport=self.transport,
                    end_of_speech_ms=round(1000 * (self._monotonic() - ended.last_speech_at), 1),
                )
            except VoicePipeError as error:
                await self._failed(ended, error.code, error.message)
                continue
            except Exception:
                log.exception("utterance transcription failed")
                await self._failed(ended, "transcription_failed", "transcription failed")
                continue
            reason = self.turns.transcribed(ended.utterance)
            lag = round(1000 * (self._monotonic() - ended.last_speech_at), 1)
            final = Final(ended.utterance, round(start, 3), round(end, 3), result, lag, reason)
            try:
                await self.emit(final)
            except Exception:
                # A transport's rendering bug must not stop the finals of later utterances.
                log.exception("emitting a final failed")

    async def _failed(self, ended: UtteranceEnded, code: str, message: str) -> None:
        reason = self.turns.transcribed(ended.utterance)
        await self.emit(Failed(ended.utterance, code, message, reason))


def _shifted(transcript: Transcript, seconds: float) -> Transcript:
    segments = tuple(
        msgspec.structs.replace(s, start=round(s.start + seconds, 3), end=round(s.end + seconds, 3))
        for s in transcript.segments
    )
    words = tuple(
        msgspec.structs.replace(w, start=round(w.start + seconds, 3), end=round(w.end + seconds, 3))
        for w in transcript.words
    )
    return msgspec.structs.replace(transcript, segments=segments, words=words)
