"""Use case: transcripts while the user speaks, from a stream of 16 kHz PCM frames."""

from __future__ import annotations

import asyncio
import logging
import time

from application.eager_ends import EagerEnds
from application.ports import Clock, Transcriber, TranscriptionJob, TurnDetector, VadSession
from application.stream_audio import StreamAudio
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
from application.stream_finals import Heard, StreamFinals
from application.transcribe_audio import TranscribeAudio
from domain.drafts import BYTES_PER_MS
from domain.errors import Busy
from domain.speech import AudioClip, TranscriptionHints
from domain.turn_decisions import (
    CancelDraft,
    CancelFinal,
    CancelTurnCheck,
    Decision,
    EagerEnd,
    EagerEndWithdrawn,
    Forget,
    StartDraft,
    StartFinal,
    StartTurnCheck,
    UtteranceEnded,
    UtteranceStarted,
)
from domain.turns import WINDOW_BYTES, Turns
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

FEED_BYTES = 8 * WINDOW_BYTES  # 256 ms: the most audio taken in before cuts are checked


class UtteranceStream:
    """One speaker's stream: voice activity cuts utterances; each gets partials and a final.

    The rules of when to cut and what to transcribe are domain/turns.py's (Turns); this
    runs the VAD and the jobs Turns asks for, and emits the session events in order:
    - Drafts give way when the model is busy (they are skipped, never queued behind finals);
      a draft's Partial is dropped when its utterance ended meanwhile.
    - Finals in utterance order, in stream time (application/stream_finals.py); with
      `words`, with word timings.
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
        model: str | None = None,  # every draft's and final's (None: the default)
    ) -> None:
        self.transcriber, self.model = transcriber, model
        self.vad, self.emit, self.language = vad, emit, language
        self._draft_hints = TranscriptionHints(prompt=prompt) if prompt else None  # no timing
        self._monotonic = clock.monotonic if clock is not None else time.monotonic
        self.turns = Turns(policy, partial_ms=partial_ms, manual=manual, judge=turns is not None)
        self.turn_model = turns
        self.audio = StreamAudio()
        self.finals = StreamFinals(
            transcriber=transcriber,
            transcribe=transcribe,
            audio=self.audio,
            turns=self.turns,
            emit=emit,
            monotonic=self._monotonic,
            stream_id=stream_id,
            transport=transport,
            language=language,
            hints=TranscriptionHints(prompt=prompt, words=words) if prompt or words else None,
            model=model,
        )
        self._notices: list[StreamEvent] = []
        self._draft: asyncio.Task[None] | None = None
        self._early: tuple[int, asyncio.Task[Heard]] | None = None
        self.eager = EagerEnds()
        self._check: tuple[int, asyncio.Task[float]] | None = None

    async def feed(self, pcm: bytes) -> None:
        """Audio in; a big frame is taken a window batch at a time, so the utterance cut and
        the drafts happen where they would for small frames."""
        for at in range(0, len(pcm), FEED_BYTES):
            self.audio.append(pcm[at : at + FEED_BYTES])
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

    def retune(self, policy: Endpointing) -> None:
        """New turn thresholds and waits for the rest of the stream."""
        self.turns.retune(policy)

    def clear(self) -> None:
        """Drop the utterance in progress: no final for it."""
        self._act(self.turns.clear())

    async def close(self, finish: bool) -> None:
        if finish:
            await self._end("stream_end")
            await self.finals.finish()
        else:
            self.finals.cancel()
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
        self._notices += self.eager.due()

    def _act(self, decisions: list[Decision]) -> None:
        loop = asyncio.get_running_loop()
        for decision in decisions:
            match decision:
                case UtteranceStarted(utterance, start):
                    self._notices.append(SpeechStarted(utterance, start // BYTES_PER_MS))
                case StartDraft(utterance, start, end):
                    partial = self._partial(self.audio.clip(start, end), utterance, start)
                    self._draft = loop.create_task(partial)
                case CancelDraft() if self._draft is not None:
                    self._draft.cancel()
                case StartFinal(job, start, end):
                    self._early = (job, self.finals.start_early(self.audio.clip(start, end)))
                case CancelFinal(job) if (task := self._early_task(job)) is not None:
                    task.cancel()
                    self._early = None
                case StartTurnCheck(check, start, end):
                    judging = self._judge(self.audio.clip(start, end))
                    self._check = (check, loop.create_task(judging))
                case CancelTurnCheck(check) if self._check is not None and self._check[0] == check:
                    self._check[1].cancel()
                    self._check = None
                case EagerEnd(utterance, job, start, end, p) if task := self._early_task(job):
                    self.eager.likely(utterance, task, start, end, p)
                case EagerEndWithdrawn(utterance):
                    self._notices += self.eager.withdrawn(utterance)
                case UtteranceEnded() as ended:
                    early, eager = self._handed_over(ended.early), self.eager.ended(ended.utterance)
                    self.finals.put(ended, early, eager)
                    start_ms, end_ms = ended.start // BYTES_PER_MS, ended.closed_at // BYTES_PER_MS
                    self._notices.append(
                        SpeechStopped(ended.utterance, ended.reason, start_ms, end_ms)
                    )
                case Forget(before):
                    self.audio.forget_before(before)

    def _early_task(self, job: int | None) -> asyncio.Task[Heard] | None:
        return self._early[1] if self._early is not None and self._early[0] == job else None

    def _handed_over(self, job: int | None) -> asyncio.Task[Heard] | None:
        task = self._early_task(job)
        if task is not None:
            self._early = None
        return task

    async def _notify(self) -> None:
        notices, self._notices = self._notices, []
        for notice in notices:
            await self.emit(notice)

    async def _judge(self, clip: AudioClip) -> float:
        """The turn model's probability that the sentence is finished."""
        assert self.turn_model is not None
        try:
            return await self.turn_model.complete(clip.pcm)
        except Exception:
            log.warning("the turn model failed; waiting for silence instead", exc_info=True)
            raise

    async def _partial(self, clip: AudioClip, utterance: int, start: int) -> None:
        job = TranscriptionJob(clip, self.language, "draft", self.model, hints=self._draft_hints)
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
