"""Use case: what the service offers, as every protocol lists it: speech-to-text models with
their languages, voices with their provider and language."""

from __future__ import annotations

from typing import Any

import msgspec

from application.speech_pipeline import SpeechPipeline
from domain.errors import UnknownVoice
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
        return voices_of(self.speech)

    def voice_languages(self) -> dict[str, str]:
        """Each voice's locale, by name."""
        return {voice.name: voice.language for voice in self.voices()}

    def voice_for(self, name: str | None, language: str | None) -> str | None:
        """A voice by name, else the first whose language is `language` (es, es_ES, es-ES: a
        locale first, then its language), else None: the default voice. A language no voice
        speaks is refused, never spoken with a voice of another language."""
        if name or not language:
            return name or None
        wanted = language.replace("-", "_").lower()
        voices = self.voices()
        exact = [v.name for v in voices if v.language.lower() == wanted]
        base = wanted.split("_")[0]
        near = [v.name for v in voices if v.language.split("_")[0].lower() == base]
        if exact or near:
            return (exact or near)[0]
        spoken = ", ".join(sorted({v.language for v in voices}))
        raise UnknownVoice(
            f"no voice speaks {language!r} (voices speak: {spoken}); PIPER_VOICES adds voices"
        )


def voices_of(speech: SpeechPipeline) -> list[VoiceInfo]:
    """Each provider's voices, with the language the voice says (Piper's .onnx.json)."""
    found = []
    for synthesizer in speech.providers.synthesizers:
        told = getattr(synthesizer, "language_of", None)
        for name in synthesizer.voices():
            language = told(name) if told is not None else _locale(name)
            found.append(VoiceInfo(synthesizer.provider, name, language))
    return found


def _locale(voice: str) -> str:
    """Piper names start with the locale (en_US-joe-medium); other voices say nothing: en."""
    head = voice.split("-", 1)[0]
    return head if len(head) == 5 and head[2] == "_" else "en"
