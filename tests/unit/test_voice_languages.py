"""PIPER_VOICES: each voice's language from its .onnx.json, the voices a setting names, and the
choice of a voice by language (issue 27)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from adapters.piper_synthesizer import bundled_voice, voice_files, voice_language
from application.catalog import Catalog
from domain.errors import UnknownVoice
from entrypoints.settings import Settings, SettingsError
from entrypoints.speak.options import voice_of as speak_voice_of
from entrypoints.speech_models import piper_voices


def voice(folder: Path, name: str, config: dict[str, Any]) -> Path:
    model = folder / f"{name}.onnx"
    model.write_bytes(b"onnx")
    Path(f"{model}.json").write_text(json.dumps(config), encoding="utf-8")
    return model


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"language": {"code": "es_ES"}, "espeak": {"voice": "es"}}, "es_ES"),
        ({"language": {"code": "de-de"}}, "de_DE"),
        ({"espeak": {"voice": "pt-br"}}, "pt_BR"),
        ({"espeak": {"voice": "fr"}}, "fr"),
        ({"language": "nonsense", "espeak": 3}, "it_IT"),  # the name's head, as a last resort
    ],
)
def test_a_voice_language_is_what_its_config_says(
    tmp_path: Path, config: dict[str, Any], expected: str
) -> None:
    assert voice_language(voice(tmp_path, "it_IT-x-medium", config)) == expected


def test_piper_voices_joins_files_and_directories_after_the_default(tmp_path: Path) -> None:
    folder = tmp_path / "more"
    folder.mkdir()
    b, a = voice(folder, "es_ES-b-low", {}), voice(folder, "de_DE-a-low", {})
    c = voice(tmp_path, "fr_FR-c-low", {})
    assert voice_files([folder, c]) == [a, b, c]
    found = piper_voices(Settings(piper_voices=(str(folder), str(c))))
    assert found == [bundled_voice(), a, b, c]


@pytest.mark.parametrize("problem", ["missing", "empty", "no_config", "twice", "default"])
def test_piper_voices_refuses_what_it_cannot_load_naming_the_setting(
    tmp_path: Path, problem: str
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    lone = tmp_path / "es_ES-lone-low.onnx"
    lone.write_bytes(b"onnx")  # no .onnx.json beside it
    twin = voice(tmp_path, "es_ES-twin-low", {})
    paths = {
        "missing": [str(tmp_path / "nowhere")],
        "empty": [str(empty)],
        "no_config": [str(lone)],
        "twice": [str(twin), str(twin)],
        "default": [str(bundled_voice())],  # the bundled voice's name is taken
    }[problem]
    with pytest.raises(SettingsError, match="PIPER_VOICES"):
        piper_voices(Settings(piper_voices=tuple(paths)))


class Voices:
    provider = "piper"
    default_voice = "en_US-joe-medium"

    def __init__(self, languages: dict[str, str]) -> None:
        self.languages = languages

    def voices(self) -> list[str]:
        return list(self.languages)

    def language_of(self, name: str) -> str:
        return self.languages[name]


def catalog(languages: dict[str, str]) -> Catalog:
    speech = SimpleNamespace(providers=SimpleNamespace(synthesizers=[Voices(languages)]))
    return Catalog(transcriber=None, speech=speech)  # type: ignore[arg-type]


def test_a_voice_is_picked_by_name_then_by_locale_then_by_language() -> None:
    voices = catalog({"en_US-joe": "en_US", "es_MX-ana": "es_MX", "es_ES-luis": "es_ES"})
    assert voices.voice_for("es_MX-ana", "en") == "es_MX-ana"  # the name wins
    assert voices.voice_for(None, None) is None  # the default voice
    assert voices.voice_for(None, "es-ES") == "es_ES-luis"
    assert voices.voice_for(None, "es_es") == "es_ES-luis"
    assert voices.voice_for(None, "es") == "es_MX-ana"  # the first that speaks it
    assert voices.voice_for(None, "es_AR") == "es_MX-ana"
    assert voices.voice_for(None, "EN") == "en_US-joe"
    with pytest.raises(UnknownVoice, match="PIPER_VOICES") as refused:
        voices.voice_for(None, "fr")
    assert refused.value.code == "unknown_voice" and "en_US, es_ES, es_MX" in refused.value.message


def test_voices_list_each_with_its_language() -> None:
    listed = catalog({"en_US-joe": "en_US", "es_ES-luis": "es_ES"}).voices()
    assert [(v.name, v.language) for v in listed] == [
        ("en_US-joe", "en_US"),
        ("es_ES-luis", "es_ES"),
    ]


def test_an_aura_model_of_another_language_is_a_voice_of_that_language() -> None:
    voices = {"piper": ["en_US-joe", "es_ES-luis"]}
    languages = {"en_US-joe": "en_US", "es_ES-luis": "es_ES"}
    assert speak_voice_of("aura-2-celeste-es", voices, languages) == "es_ES-luis"
    assert speak_voice_of("aura-2-celeste-ES", voices, languages) == "es_ES-luis"
    assert speak_voice_of("es_ES-luis", voices, languages) == "es_ES-luis"  # by name
    # English Aura models and languages no voice speaks: the default voice, as before.
    assert speak_voice_of("aura-2-thalia-en", voices, languages) is None
    assert speak_voice_of("aura-2-agathe-fr", voices, languages) is None
