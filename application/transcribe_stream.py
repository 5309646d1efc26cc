"""Use case: transcripts while the user speaks, from a stream of 16 kHz PCM frames."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import msgspec

from application.ports import Clock, Transcriber, TranscriptionJob, TurnDetector, VadSession
from application.transcribe_audio import TranscribeAudio, TranscriptionResult
from domain.errors import Busy, VoicePipeError
from domain.speech import AudioClip, Transcript, TranscriptionHints
from domain.utterances import WINDOW_MS, Endpointing, UtteranceDetector

log = logging.getLogger(__name__)

RATE = 16_000
BYTES_PER_MS = RATE * 2 // 1000
WINDOW_BYTES = WINDOW_MS * BYTES_PER_MS
FEED_BYTES = 8 * WINDOW_BYTES  # 256 ms: the most audio taken in before cuts are checked
AHEAD_MS = 300  # audio this far ahead of real time (and of two frames) gets no drafts
TURN_MS = 8_000  # the turn model hears the last 8 s of an utterance
# Drafts start on windows this sure of speech: the last windows before a pause are less sure
# (median 0.52 against 0.78 just before, on recorded speech), and a draft started there holds
# the model when the final needs it. An overdue draft (twice `partial_ms`) starts anyway.
DRAFT_SURE = 0.8


class Partial(msgspec.Struct, frozen=True):
    utterance: int
    text: str
    audio_ms: float  # of this utterance, so far


class Final(msgspec.Struct, frozen=True):
    utterance: int
    start: float  # seconds from the start of the stream
    end: float
    result: TranscriptionResult
    end_of_speech_lag_ms: float  # from the last speech window to this final, in wall time


class Failed(msgspec.Struct, frozen=True):
    """An utterance whose final transcription failed (busy model, model error)."""

    utterance: int
    code: str
    message: str


class SpeechStarted(msgspec.Struct, frozen=True):
    """Voice activity began an utterance (at once: a speaking answer may stop for it)."""

    utterance: int
    audio_ms: int  # from the start of the stream, preroll included


class SpeechStopped(msgspec.Struct, frozen=True):
    """The utterance is closed (silence, the client's commit, or the length cap); its final
    or a Failed follows."""

    utterance: int
    audio_ms: int


StreamEvent = Partial | Final | Failed | SpeechStarted | SpeechStopped
Emit = Callable[[StreamEvent], Awaitable[None]]


class _Pending(msgspec.Struct):
    index: int
    start: int
    end: int
    last_speech_at: float
    early: asyncio.Task[tuple[Transcript, float]] | None


class UtteranceStream:
    """One speaker's stream: voice activity cuts utterances; each gets partials and a final.

    Rules:
    - Partial transcripts at most every `partial_ms` of speech, as drafts that give way when
      the model is busy (they are skipped, never queued behind finals).
    - An utterance ends after `endpoint_ms` of silence, or when the client says so. Its final
      transcription starts speculatively after `early_ms` of silence and is dropped if speech
      resumes (or started again at `settle_ms` if the pause was not quiet), so the final
      comes about `endpoint_ms` after the end of speech, not later.
    - Finals are emitted in utterance order, with segments timed from the start of the stream.
    - `words`: finals carry word timings (stream time), at the cost of the model aligning them.
    - `manual`: voice activity does not cut; an utterance is all audio up to `end_utterance`
      (the client commits), and `clear` drops the audio since the last one. Its final still
      starts early at a pause, and is kept if no speech follows before the cut.
    - `policy.semantic` (with a turn model): at the pause the model judges the sentence; a
      finished one ends there, an unfinished one waits for `incomplete_ms` of silence.
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
        self.partial_ms = partial_ms
        self.transport = transport
        self.manual = manual
        self.hints = TranscriptionHints(prompt=prompt, words=words) if prompt or words else None
        self._draft_hints = TranscriptionHints(prompt=prompt) if prompt else None  # no timing
        self._notices: list[SpeechStarted | SpeechStopped] = []
        self._first_audio_at: float | None = None
        self._frame_ms = 0.0  # the largest frame so far
        self._monotonic = clock.monotonic if clock is not None else time.monotonic
        self.detector = UtteranceDetector(policy)
        self.policy = self.detector.policy
        self.turns = turns if self.policy.semantic and not manual else None
        self._turn: asyncio.Task[bool] | None = None  # is the sentence finished?
        self._audio = bytearray()  # since `_offset` bytes into the stream
        self._offset = 0
        self._windows = 0  # VAD windows seen: the stream position in audio time
        self._start: int | None = None  # byte position where the current utterance starts
        self._last_end = 0  # byte position where the last utterance ended
        self._last_speech_at = 0.0  # wall time of the last window with speech
        self._sure = False  # the last window was DRAFT_SURE of speech
        self._last_partial = 0
        self._partial: asyncio.Task[None] | None = None
        self._early: tuple[int, asyncio.Task[tuple[Transcript, float]]] | None = None
        self._finals: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._pending_starts: list[int] = []  # audio from here on is still needed
        self._count = 0
        self._finisher = asyncio.get_running_loop().create_task(self._emit_finals())

    @property
    def position(self) -> int:
        return self._windows * WINDOW_BYTES

    async def feed(self, pcm: bytes) -> None:
        """Audio in; a big frame is taken a window batch at a time, so the utterance cut and
        the drafts happen where they would for small frames."""
        self._frame_ms = max(self._frame_ms, len(pcm) / BYTES_PER_MS)
        for at in range(0, len(pcm), FEED_BYTES):
            await self._feed(pcm[at : at + FEED_BYTES])

    async def _feed(self, pcm: bytes) -> None:
        if self._first_audio_at is None:
            self._first_audio_at = self._monotonic()
        self._audio += pcm
        if self.manual and self._start is None and pcm:
            self._start, self._last_partial = max(self._offset, self._last_end), self.position
        for probability in self.vad.probabilities(pcm):
            self._windows += 1
            if probability >= self.policy.end_threshold:
                self._last_speech_at = self._monotonic()
            self._sure = probability >= DRAFT_SURE
            change = self.detector.push(probability)
            if self.manual:
                self._on_manual(change)
            else:
                self._on(change)
                if self.detector.turn_due:
                    self._check()
                self._judged()
        if (
            self._start is not None
            and self.position - self._start >= self.policy.max_utterance_ms * BYTES_PER_MS
        ):
            await self.end_utterance()  # never-ending speech or noise: cut, keep listening
        if self._start is None:  # keep what a start reaches back to: the speech run + preroll
            keep = self.policy.min_speech_ms + self.policy.preroll_ms
            self._forget_before(self.position - keep * BYTES_PER_MS)
        elif (
            self.detector.silence_ms == 0  # drafts while speech goes on, not in the pause
            and self._early is None
            and self._draft_due()
            and not self._ahead_of_real_time()
        ):
            self._draft()
        await self._notify()

    def _draft_due(self) -> bool:
        since = self.position - self._last_partial
        due = self.partial_ms * BYTES_PER_MS
        return since >= due and (self._sure or since >= 2 * due)

    def _ahead_of_real_time(self) -> bool:
        """Audio sent faster than it plays (a file, a burst): a draft of it would be stale
        before it is shown, and would hold the model the final needs next."""
        now = self._monotonic()
        if self._first_audio_at is None:
            self._first_audio_at = now
        played_ms = 1000 * (now - self._first_audio_at)
        # A client sending big frames in real time is up to a frame ahead: that is not a burst.
        return self.position / BYTES_PER_MS - played_ms > max(AHEAD_MS, 2 * self._frame_ms)

    async def end_utterance(self) -> bool:
        """Close the utterance in progress now; False if there was none."""
        ended = self.detector.force_end() or self._start is not None
        if ended and self._start is not None:
            self._end(self.position)
        await self._notify()
        return ended

    def clear(self) -> None:
        """Drop the utterance in progress: no final for it."""
        self.detector.force_end()
        for task in (self._partial, self._early[1] if self._early else None, self._turn):
            if task is not None:
                task.cancel()
        self._early = self._turn = None
        self._start = None
        self._last_end = self.position

    async def _notify(self) -> None:
        notices, self._notices = self._notices, []
        for notice in notices:
            await self.emit(notice)

    async def close(self, finish: bool) -> None:
        if finish:
            await self.end_utterance()
            self._finals.put_nowait(None)
            await self._finisher
        else:
            self._finisher.cancel()
            for task in (self._partial, self._early[1] if self._early else None, self._turn):
                if task is not None:
                    task.cancel()

    def _on(self, change: str | None) -> None:
        if change == "start":
            preroll = (self.policy.min_speech_ms + self.policy.preroll_ms) * BYTES_PER_MS
            # Never reach back into the last utterance (a cut mid-speech): no word twice.
            self._start = max(self._offset, self._last_end, self.position - preroll)
            self._last_partial = self.position
            self._notices.append(SpeechStarted(self._count, self._start // BYTES_PER_MS))
        elif change == "pause" and self._start is not None:
            self._cut_early()
        elif change == "resume":
            for task in (self._early[1] if self._early else None, self._turn):
                if task is not None:
                    task.cancel()
            self._early = self._turn = None
        elif change == "end" and self._start is not None:
            self._end(self.position)

    def _check(self) -> None:
        if self.turns is not None and self._start is not None:
            self._turn = asyncio.get_running_loop().create_task(
                self._finished(self._start, self.position)
            )

    def _judged(self) -> None:
        """Act on the turn model's verdict once it is in (checked every window, so the cut
        happens at a window like any other)."""
        turn = self._turn
        if turn is None or not turn.done():
            return
        self._turn = None
        if turn.cancelled() or self._start is None or not self.detector.in_speech:
            return
        if turn.exception() is not None:
            return  # no verdict: the silence endpoint decides
        if turn.result():
            self.detector.force_end()
            self._end(self.position)
        else:
            self.detector.wait_longer()

    async def _finished(self, start: int, end: int) -> bool:
        """The turn model's verdict on the utterance so far (its last 8 s)."""
        assert self.turns is not None
        start = max(start, end - TURN_MS * BYTES_PER_MS)
        try:
            probability = await self.turns.complete(self._clip(start, end).pcm)
        except Exception:
            log.warning("the turn model failed; waiting for silence instead", exc_info=True)
            raise
        return probability >= self.policy.complete_threshold

    def _on_manual(self, change: str | None) -> None:
        """The client cuts; voice activity only starts the final early at a pause, kept if no
        speech follows before the client's cut."""
        if change in ("pause", "resume", "start") and self._early is not None:
            self._early[1].cancel()  # speech went on after the pause
            self._early = None
        if change == "pause" and self._start is not None:
            self._cut_early()

    def _cut_early(self) -> None:
        """Start the final on the audio so far; one cut before it (that left out sound) goes."""
        assert self._start is not None
        if self._early is not None:
            self._early[1].cancel()
        task = asyncio.get_running_loop().create_task(self._model(self._start, self.position))
        self._early = (self.position, task)

    def _end(self, position: int) -> None:
        assert self._start is not None
        early, self._early = self._early, None
        if early is not None and not self.detector.cut_is_quiet():
            early[1].cancel()  # it left out sound (a cut before settle_ms): cut here instead
            early = None
        if self._turn is not None:
            self._turn.cancel()  # the utterance ended before the verdict
            self._turn = None
        # The early transcription already covers the speech and the quiet after it.
        end = early[0] if early is not None else position
        task = early[1] if early is not None else None
        self._finals.put_nowait(
            _Pending(self._count, self._start, max(end, self._start), self._last_speech_at, task)
        )
        self._pending_starts.append(self._start)
        # Manual: the next utterance starts at the client's cut, past the silence left out.
        self._last_end = position if self.manual else max(end, self._start)
        self._notices.append(SpeechStopped(self._count, self._last_end // BYTES_PER_MS))
        self._count += 1
        self._start = None

    def _clip(self, start: int, end: int) -> AudioClip:
        return AudioClip(bytes(self._audio[start - self._offset : end - self._offset]), RATE)

    def _forget_before(self, position: int) -> None:
        cut = min([position, *self._pending_starts]) - self._offset
        if cut > 0:
            del self._audio[:cut]
            self._offset += cut

    async def _model(self, start: int, end: int) -> tuple[Transcript, float]:
        started = self._monotonic()
        job = TranscriptionJob(self._clip(start, end), self.language, "utterance", hints=self.hints)
        transcript = await self.transcriber.transcribe(job)
        return transcript, 1000 * (self._monotonic() - started)

    def _draft(self) -> None:
        if self._partial is not None and not self._partial.done():
            return
        assert self._start is not None
        self._last_partial = self.position
        clip, index = self._clip(self._start, self.position), self._count
        self._partial = asyncio.get_running_loop().create_task(self._send_partial(clip, index))

    async def _send_partial(self, clip: AudioClip, index: int) -> None:
        try:
            job = TranscriptionJob(clip, self.language, "draft", hints=self._draft_hints)
            transcript = await self.transcriber.transcribe(job)
        except Busy:
            return  # drafts give way to finals
        except Exception:
            log.warning("a partial transcription failed", exc_info=True)
            return  # a draft is optional: the final will say what was heard
        if index == self._count and transcript.text:  # its utterance is still going
            await self.emit(Partial(index, transcript.text, round(clip.duration_ms, 1)))

    async def _emit_finals(self) -> None:
        while (item := await self._finals.get()) is not None:
            try:
                if item.early is not None and item.early.cancelled():
                    item.early = None
                if item.early is not None:
                    transcript, model_ms = await item.early
                else:
                    transcript, model_ms = await self._model(item.start, item.end)
                start, end = item.start / (RATE * 2), item.end / (RATE * 2)
                result = await self.transcribe.record_utterance(
                    self._clip(item.start, item.end),
                    _shifted(transcript, start),
                    model_ms,
                    pipeline_id=f"{self.stream_id}-{item.index}",
                    transport=self.transport,
                    end_of_speech_ms=round(1000 * (self._monotonic() - item.last_speech_at), 1),
                )
            except VoicePipeError as error:
                await self.emit(Failed(item.index, error.code, error.message))
                continue
            except Exception:
                log.exception("utterance transcription failed")
                await self.emit(Failed(item.index, "transcription_failed", "transcription failed"))
                continue
            finally:
                self._pending_starts.remove(item.start)
            lag = round(1000 * (self._monotonic() - item.last_speech_at), 1)
            try:
                await self.emit(Final(item.index, round(start, 3), round(end, 3), result, lag))
            except Exception:
                # A transport's rendering bug must not stop the finals of later utterances.
                log.exception("emitting a final failed")


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
