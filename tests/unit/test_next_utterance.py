"""Wyoming's transcribe asks for the next utterance: the model and language chosen, or a
refusal that drops that utterance, until it ends or the client asks again (issue 27)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from application.catalog import Catalog
from application.next_utterance import NextUtterance
from domain.errors import VoicePipeError


def asked() -> NextUtterance:
    models = SimpleNamespace(model_name="tiny.en", names=lambda: ["tiny.en", "base"])
    return NextUtterance(Catalog(transcriber=models, speech=None))  # type: ignore[arg-type]


def test_the_language_picks_the_model_that_speaks_it() -> None:
    nxt = asked()
    nxt.ask(None, "es-MX")
    assert (nxt.model, nxt.language, nxt.refused) == ("base", "es", False)
    nxt.ask("", "en")  # an empty name is no name
    assert (nxt.model, nxt.language) == (None, "en")  # the default speaks it
    nxt.ask("base", None)
    assert (nxt.model, nxt.language) == ("base", None)  # detected per utterance


@pytest.mark.parametrize(
    ("model", "language", "code"),
    [("tiny.en", "es", "language_not_supported"), (None, "xx", "language_not_supported"),
     ("large-v9", None, "unknown_model")],
)  # fmt: skip
def test_a_refusal_is_kept_until_the_utterance_ends(
    model: str | None, language: str | None, code: str
) -> None:
    nxt = asked()
    nxt.ask("base", "es")
    with pytest.raises(VoicePipeError) as refused:
        nxt.ask(model, language)
    assert refused.value.code == code
    assert (nxt.model, nxt.language, nxt.refused) == (None, None, True)  # nothing of before
    nxt.clear()
    assert (nxt.model, nxt.language, nxt.refused) == (None, None, False)
