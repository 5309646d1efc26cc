"""Use case: what the service offers, as every protocol lists it: speech-to-text models with
their languages, voices with their provider and language."""

from __future__ import annotations

from typing import Any

import msgspec

from application.speech_pipeline import SpeechPipeline
from domain.languages import WHISPER_LANGUAGES


class ModelInfo(msgspec.Struct, frozen=True):
    name: str
    languages: tuple[str, ...]


class VoiceInfo(msgspec.Struct, frozen=True):
    provider: str
    name: str
    language: str  # a locale (en_US) when the voice's name says, else "en"


class Catalog:
    def __init__(self, *, transcriber: Any, speech: SpeechPipeline) -> None:
        self.transcriber = transcriber
        self.speech = speech

    @property
    def default_model(self) -> str:
        return str(self.transcriber.model_name)

    def model_names(self) -> list[str]:
        """The default model first, then the other configured ones (WHISPER_MODELS)."""
        names = getattr(self.transcriber, "names", lambda: [self.default_model])()
        return list(dict.fromkeys([self.default_model, *names]))

    def models(self) -> list[ModelInfo]:
        """`.en` models know English only; the others Whisper's 99 languages."""
        return [
            ModelInfo(name, ("en",) if name.endswith(".en") else WHISPER_LANGUAGES)
            for name in self.model_names()
        ]

    def voices(self) -> list[VoiceInfo]:
        return [
            VoiceInfo(provider, name, _locale(name))
            for provider, names in self.speech.voices().items()
            for name in names
        ]


def _locale(voice: str) -> str:
    """Piper names start with the locale (en_US-joe-medium); other voices say nothing: en."""
    head = voice.split("-", 1)[0]
    return head if len(head) == 5 and head[2] == "_" else "en"
