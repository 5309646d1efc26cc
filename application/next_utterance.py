"""Use case: what a client asked for its next utterance before sending it (Wyoming's
`transcribe`), kept until that utterance ends."""

from __future__ import annotations

from application.catalog import Catalog
from application.model_choice import choose
from domain.errors import VoicePipeError


class NextUtterance:
    """The model and language chosen for the next utterance (application/model_choice.py),
    or the refusal. After a refusal the utterance's audio is dropped, never transcribed with
    a model that does not speak the language asked; the next ask, or its end, clears it."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.clear()

    def clear(self) -> None:
        self.model: str | None = None  # None: the default model
        self.language: str | None = None  # None: as the model says (detected, or English)
        self.refused = False

    def ask(self, model: str | None, language: str | None) -> None:
        self.clear()
        try:
            self.model, self.language = choose(self.catalog, model or None, language)
        except VoicePipeError:
            self.refused = True
            raise
