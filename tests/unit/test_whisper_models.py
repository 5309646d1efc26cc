"""Model choice per request, lazy loading and idle unloading (fake models, real registry)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.whisper_models import UnknownModel, WhisperModels
from domain.speech import AudioClip
from tests.unit.fakes import FakeClock, FakeTranscriber


def registry(
    tmp_path: Path, idle: float = 300.0, clock: FakeClock | None = None
) -> tuple[WhisperModels, list[str]]:
    loaded: list[str] = []

    def load(path: str) -> Any:
        loaded.append(path)
        return FakeTranscriber(text=f"from {Path(path).name}")

    default = FakeTranscriber(text="from default")
    models = WhisperModels(
        default,  # type: ignore[arg-type]
        load,
        cache_dir=tmp_path,
        idle_seconds=idle,
        clock=clock or FakeClock(),
    )
    return models, loaded


CLIP = AudioClip(b"\x00\x00" * 1600, 16_000)


async def test_default_and_openai_alias_use_the_default(tmp_path: Path) -> None:
    models, loaded = registry(tmp_path)
    for name in (None, "whisper-1", "fake-model"):
        assert (await models.transcribe(CLIP, None, model=name)).text == "from default"
    assert loaded == []


async def test_a_model_directory_loads_once_and_is_reused(tmp_path: Path) -> None:
    (tmp_path / "small").mkdir()
    models, loaded = registry(tmp_path)
    for _ in range(3):
        result = await models.transcribe(CLIP, None, model=str(tmp_path / "small"))
        assert result.text == "from small"
    assert loaded == [str(tmp_path / "small")]
    assert list(models.loaded()) == [str(tmp_path / "small")]


async def test_models_idle_past_the_limit_are_unloaded(tmp_path: Path) -> None:
    (tmp_path / "small").mkdir()
    small = str(tmp_path / "small")
    clock = FakeClock()
    models, loaded = registry(tmp_path, idle=300.0, clock=clock)
    await models.transcribe(CLIP, None, model=small)
    clock.t += 299
    await models.transcribe(CLIP, None)  # any call sweeps the idle ones
    assert list(models.loaded()) == [small]  # idle 299 s: kept
    await models.transcribe(CLIP, None, model=small)  # used again: idle from now
    clock.t += 299
    await models.transcribe(CLIP, None)
    assert models.loaded() == {small: 299.0}
    clock.t += 2
    await models.transcribe(CLIP, None)
    assert models.loaded() == {}  # idle 301 s: unloaded
    await models.transcribe(CLIP, None, model=small)
    assert loaded == [small, small]  # loaded again after being unloaded


async def test_unknown_models_are_refused(tmp_path: Path) -> None:
    models, _ = registry(tmp_path)
    with pytest.raises(UnknownModel):
        await models.transcribe(CLIP, None, model="large-v9")
