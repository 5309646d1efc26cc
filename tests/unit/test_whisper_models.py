"""Model choice per request by configured name only, lazy loading, a cap on loaded models,
idle unloading, one queue for all models, and the WHISPER_MODELS setting (fake models)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from adapters.faster_whisper_transcriber import ModelQueue
from adapters.whisper_models import UnknownModel, WhisperModels
from application.ports import TranscriptionJob
from domain.errors import Busy
from domain.speech import AudioClip, Transcript
from entrypoints.settings import Settings, SettingsError
from tests.unit.fakes import FakeClock, FakeTranscriber

CLIP = AudioClip(b"\x00\x00" * 1600, 16_000)


class HeldTranscriber(FakeTranscriber):
    """Answers only once `release` is set: a request that is still using its model."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.release = asyncio.Event()

    async def transcribe(self, job: TranscriptionJob, progress: Any = None) -> Transcript:
        await self.release.wait()
        return await super().transcribe(job, progress)


async def loaded_now(models: WhisperModels, name: str) -> None:
    """Wait until a request has loaded `name` and is using it (the load runs in a thread)."""
    for _ in range(5000):
        if name in models.loaded():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"{name} was never loaded")


def registry(
    tmp_path: Path,
    names: tuple[str, ...] = ("small", "medium"),
    idle: float = 300.0,
    clock: FakeClock | None = None,
    max_loaded: int = 2,
    held: bool = False,
) -> tuple[WhisperModels, list[str]]:
    loaded: list[str] = []
    directories = {name: str(tmp_path / name) for name in names}
    for directory in directories.values():
        Path(directory).mkdir(exist_ok=True)

    def load(path: str, name: str) -> Any:
        loaded.append(name)
        assert path == directories[name]
        return (HeldTranscriber if held else FakeTranscriber)(text=f"from {name}")

    models = WhisperModels(
        FakeTranscriber(text="from default"),  # type: ignore[arg-type]
        load,
        cache_dir=tmp_path,
        models=directories,
        max_loaded=max_loaded,
        idle_seconds=idle,
        clock=clock or FakeClock(),
    )
    return models, loaded


async def test_default_and_openai_alias_use_the_default(tmp_path: Path) -> None:
    models, loaded = registry(tmp_path)
    for name in (None, "whisper-1", "fake-model"):
        assert (await models.transcribe(TranscriptionJob(CLIP, model=name))).text == "from default"
    assert loaded == []


async def test_a_configured_name_loads_once_and_is_reused(tmp_path: Path) -> None:
    models, loaded = registry(tmp_path)
    for _ in range(3):
        assert (await models.transcribe(TranscriptionJob(CLIP, model="small"))).text == "from small"
    assert loaded == ["small"]
    assert list(models.loaded()) == ["small"]
    assert models.names()[0] == "fake-model"
    assert {"small", "medium"} <= set(models.names())


@pytest.mark.parametrize(
    "spelling",
    ["{d}", "{d}/", "{d}//", "{d}/.", "{d}/./", "{d}/../small", "./small", "small/", "../x"],
)
async def test_a_path_is_never_a_model_even_to_a_configured_directory(
    tmp_path: Path, spelling: str
) -> None:
    models, loaded = registry(tmp_path)
    with pytest.raises(UnknownModel) as refused:
        await models.transcribe(TranscriptionJob(CLIP, model=spelling.format(d=tmp_path / "small")))
    with pytest.raises(UnknownModel) as missing:
        await models.transcribe(
            TranscriptionJob(CLIP, model=spelling.format(d=tmp_path / "nowhere"))
        )
    assert refused.value.message == missing.value.message  # no filesystem oracle
    assert "small" in refused.value.message and str(tmp_path) not in refused.value.message
    assert loaded == []
    assert models.loaded() == {}


async def test_unknown_models_are_refused_with_the_names_to_use(tmp_path: Path) -> None:
    models, _ = registry(tmp_path)
    with pytest.raises(UnknownModel) as raised:
        await models.transcribe(TranscriptionJob(CLIP, model="large-v9"))
    assert "fake-model" in raised.value.message and "medium" in raised.value.message
    assert "large-v9" not in raised.value.message  # the same answer whatever was asked


async def test_models_idle_past_the_limit_are_unloaded(tmp_path: Path) -> None:
    clock = FakeClock()
    models, loaded = registry(tmp_path, idle=300.0, clock=clock)
    await models.transcribe(TranscriptionJob(CLIP, model="small"))
    clock.t += 299
    await models.transcribe(TranscriptionJob(CLIP))  # any call sweeps the idle ones
    assert list(models.loaded()) == ["small"]  # idle 299 s: kept
    await models.transcribe(TranscriptionJob(CLIP, model="small"))  # used again: idle from now
    clock.t += 299
    await models.transcribe(TranscriptionJob(CLIP))
    assert models.loaded() == {"small": 299.0}
    clock.t += 2
    await models.transcribe(TranscriptionJob(CLIP))
    assert models.loaded() == {}  # idle 301 s: unloaded
    await models.transcribe(TranscriptionJob(CLIP, model="small"))
    assert loaded == ["small", "small"]  # loaded again after being unloaded


async def test_loading_past_the_cap_unloads_the_least_recently_used(tmp_path: Path) -> None:
    models, loaded = registry(tmp_path, names=("a", "b", "c"), max_loaded=2)
    for name in ("a", "b", "a", "c"):  # b is the least recently used when c comes
        await models.transcribe(TranscriptionJob(CLIP, model=name))
    assert sorted(models.loaded()) == ["a", "c"]
    await models.transcribe(TranscriptionJob(CLIP, model="b"))
    assert sorted(models.loaded()) == ["b", "c"]
    assert loaded == ["a", "b", "c", "b"]


async def test_past_the_cap_with_every_model_in_use_is_busy(tmp_path: Path) -> None:
    models, loaded = registry(tmp_path, max_loaded=1, held=True)
    using = asyncio.create_task(models.transcribe(TranscriptionJob(CLIP, model="small")))
    await loaded_now(models, "small")
    with pytest.raises(Busy):
        await models.transcribe(TranscriptionJob(CLIP, model="medium"))
    assert list(models.loaded()) == ["small"]  # never unloaded under a request
    transcriber = models._loaded["small"].model
    assert isinstance(transcriber, HeldTranscriber)
    transcriber.release.set()
    assert (await using).text == "from small"
    medium = asyncio.create_task(models.transcribe(TranscriptionJob(CLIP, model="medium")))
    await loaded_now(models, "medium")
    assert list(models.loaded()) == ["medium"]  # now idle, small made room
    held = models._loaded["medium"].model
    assert isinstance(held, HeldTranscriber)
    held.release.set()
    await medium
    assert loaded == ["small", "medium"]


async def test_a_model_in_use_is_not_unloaded_for_being_idle(tmp_path: Path) -> None:
    clock = FakeClock()
    models, _ = registry(tmp_path, idle=300.0, clock=clock, held=True)
    using = asyncio.create_task(models.transcribe(TranscriptionJob(CLIP, model="small")))
    await loaded_now(models, "small")
    clock.t += 1000  # a long transcription
    await models.transcribe(TranscriptionJob(CLIP))
    assert list(models.loaded()) == ["small"]
    models._loaded["small"].model.release.set()  # type: ignore[attr-defined]
    await using
    clock.t += 301
    await models.transcribe(TranscriptionJob(CLIP))
    assert models.loaded() == {}


def test_one_queue_bounds_the_jobs_of_every_model() -> None:
    queue = ModelQueue(max_jobs=2)
    queue.admit()
    with pytest.raises(Busy):
        queue.admit(draft=True)  # a partial waits for no one
    queue.admit()
    with pytest.raises(Busy):
        queue.admit()
    queue.release()
    queue.admit()
    assert queue.jobs == 2
    queue.worker.shutdown()


def model_dir(tmp_path: Path, name: str) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "model.bin").write_bytes(b"")
    return directory


def test_whisper_models_setting_names_directories(tmp_path: Path) -> None:
    small, medium = model_dir(tmp_path, "s"), model_dir(tmp_path, "m")
    settings = Settings.from_env({"WHISPER_MODELS": f"small={small}, medium.en={medium}"})
    assert settings.whisper_directories() == {"small": str(small), "medium.en": str(medium)}
    assert settings.whisper_max_loaded == 2


@pytest.mark.parametrize(
    "value",
    [
        "small={missing}",
        "small={empty}",
        "small",
        "a/b={ok}",
        "../x={ok}",
        "=/{ok}",
        "whisper-1={ok}",
        "small={ok},small={ok}",
    ],
)
def test_bad_whisper_models_stop_the_service(tmp_path: Path, value: str) -> None:
    ok = model_dir(tmp_path, "ok")
    (tmp_path / "empty").mkdir()
    paths = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "ok": ok}
    with pytest.raises(SettingsError, match="WHISPER_MODELS"):
        Settings.from_env({"WHISPER_MODELS": value.format(**paths)})


def test_the_loaded_cap_is_positive() -> None:
    with pytest.raises(SettingsError, match="WHISPER_MAX_LOADED"):
        Settings.from_env({"WHISPER_MAX_LOADED": "0"})
