"""A listening session's model, from the model and language the client asks (issue 27)."""

from __future__ import annotations

import pytest

from application.listening_session import StartListening
from application.model_choice import (
    LanguageNotSupported,
    UnknownListeningModel,
    choose_model,
    normalize_language,
)
from application.transcribe_stream import StreamEvent
from domain.languages import WHISPER_LANGUAGES
from tests.unit.conftest import build_world
from tests.unit.fakes import StillClock
from tests.unit.stream_fakes import BYTES_PER_MS, WINDOW, settle, silence, speech

ENGLISH = [("tiny.en", ("en",))]
WITH_BASE = [("tiny.en", ("en",)), ("base", WHISPER_LANGUAGES)]


@pytest.mark.parametrize(
    ("models", "asked", "language", "chosen"),
    [
        (ENGLISH, None, None, (None, None)),  # nothing asked: the default as it always was
        (ENGLISH, None, "en", (None, "en")),
        (ENGLISH, "tiny.en", "EN-us", (None, "en")),  # the default by name is None
        (WITH_BASE, None, "es", ("base", "es")),  # the language picks the model that speaks it
        (WITH_BASE, None, "es-MX", ("base", "es")),
        (WITH_BASE, "base", None, ("base", None)),  # detected per utterance
        (WITH_BASE, "base", "en", ("base", "en")),
        (WITH_BASE, None, "", (None, None)),
        ([("base", WHISPER_LANGUAGES)], None, "de", (None, "de")),  # a multilingual default
        ([*WITH_BASE, ("es-tuned", ("es",))], "es-tuned", "es", ("es-tuned", "es")),
    ],
)
def test_the_model_follows_what_is_asked(
    models: list[tuple[str, tuple[str, ...]]],
    asked: str | None,
    language: str | None,
    chosen: tuple[str | None, str | None],
) -> None:
    default = models[0][0]
    assert choose_model(models, default, asked, language) == chosen


def test_a_language_no_model_speaks_is_refused_naming_the_setting() -> None:
    with pytest.raises(LanguageNotSupported) as refused:
        choose_model(ENGLISH, "tiny.en", None, "es")
    assert refused.value.code == "language_not_supported"
    assert "multilingual" in refused.value.message and "WHISPER_MODELS" in refused.value.message


def test_an_english_model_asked_by_name_is_not_swapped_for_another_language() -> None:
    with pytest.raises(LanguageNotSupported) as refused:
        choose_model(WITH_BASE, "tiny.en", "tiny.en", "es")
    assert "base" in refused.value.message  # what to ask for instead


@pytest.mark.parametrize("language", ["xx", "klingon-KL", "<script>" * 10])
def test_a_language_that_is_no_language_is_refused_without_echo(language: str) -> None:
    with pytest.raises(LanguageNotSupported) as refused:
        choose_model(WITH_BASE, "tiny.en", None, language)
    assert "script" not in refused.value.message and "klingon" not in refused.value.message


@pytest.mark.parametrize("asked", ["large-v3", "../../etc/passwd", "x" * 200])
def test_an_unknown_model_is_refused_without_echo(asked: str) -> None:
    with pytest.raises(UnknownListeningModel) as refused:
        choose_model(WITH_BASE, "tiny.en", asked, None)
    assert refused.value.code == "unknown_model" and asked not in refused.value.message
    assert "tiny.en, base" in refused.value.message


def test_language_tags_become_whisper_codes() -> None:
    assert [normalize_language(t) for t in ("es", "es-419", "pt_BR", " FR ", "  ", None)] == [
        "es", "es", "pt", "fr", None, None,
    ]  # fmt: skip


async def test_every_draft_and_final_of_the_stream_uses_its_model() -> None:
    world = build_world()
    clock = StillClock()
    base = world.container.listen
    listen = StartListening(
        transcriber=base.transcriber,
        transcribe=base.transcribe,
        voice_activity=base.voice_activity,
        converter=base.converter,
        access=base.access,
        clock=clock,
        limits=base.limits,
    )
    heard: list[StreamEvent] = []

    async def emit(item: StreamEvent) -> None:
        heard.append(item)

    session = listen.open(
        stream_id="s1",
        encoding="pcm_s16le",
        sample_rate=16_000,
        language="es",
        principal=world.container.access.authenticate(None),
        emit=emit,
        model="base",
    )
    pcm = silence(320) + speech(1600) + silence(960)
    for at in range(0, len(pcm), WINDOW):
        clock.t += WINDOW / (BYTES_PER_MS * 1000)
        await session.feed(pcm[at : at + WINDOW])
        await settle()
    await session.stop(finish=True)
    jobs = world.transcriber.jobs
    assert {job.kind for job in jobs} == {"draft", "utterance"}
    assert {(job.model, job.language) for job in jobs} == {("base", "es")}


def test_detection_asked_takes_a_multilingual_model() -> None:
    assert choose_model(WITH_BASE, "tiny.en", None, None, detect=True) == ("base", None)
    assert choose_model(WITH_BASE, "tiny.en", "base", "es", detect=True) == ("base", None)
    for models, asked in ((ENGLISH, None), (WITH_BASE, "tiny.en")):
        with pytest.raises(LanguageNotSupported) as refused:
            choose_model(models, "tiny.en", asked, None, detect=True)
        assert "WHISPER_MODELS" in refused.value.message
