"""Wyoming transcribes in the language its `transcribe` asks (issue 27), driven by the `wyoming`
package's client: the model is the one named, or the one that speaks the language
(application/model_choice.py); a language the named model does not speak is refused with a
coded error and its audio is not transcribed; `describe` lists each model with the languages
it really transcribes. The speech is a recorded human Spanish prompt (Asterisk's, from Debian:
bench/language_speech)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator

import pytest
from wyoming.asr import Transcribe, Transcript
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info

from bench.language_speech import clips, wer
from entrypoints.bootstrap import Container
from entrypoints.settings import Settings
from entrypoints.wyoming.service import WyomingService
from tests.integration.conftest import RunningServer, sharing_models
from tests.integration.speech import speech_16k_pcm
from tests.integration.speech import wer as english_wer
from tests.integration.test_wyoming import SENTENCE, Wyoming, client, send_audio, until

CLIP = "es_agent-alreadyon"  # "Ese agente ya ha sido autenticado. Por favor ingrese su..."
MAX_WER = 0.35  # the bare base model scores ~0.1 on it (one-shot, language given)


@pytest.fixture(scope="module")
def wyoming(container: Container) -> Iterator[Wyoming]:
    """The session's models (tiny.en the default; base, the multilingual one, installed)."""
    built = sharing_models(container, Settings(wyoming_uri="tcp://127.0.0.1:0"))
    service = WyomingService(built)
    service.attach()
    with RunningServer(built) as running:
        yield Wyoming(running, service)


@functools.cache
def spanish() -> tuple[bytes, str]:
    (clip,) = [c for c in clips("es") if c.name == CLIP]
    quiet = b"\x00\x00" * 4_800  # 300 ms either side, as a satellite's stream has
    return quiet + clip.pcm + quiet, clip.text


async def answer(connection: AsyncTcpClient, ask: Transcribe | Event, pcm: bytes) -> list[Event]:
    """What one utterance got: the events up to its transcript, or an error and what
    followed the audio (nothing, for a refused one)."""
    seen: list[Event] = []
    await connection.write_event(ask if isinstance(ask, Event) else ask.event())
    await send_audio(connection, pcm)
    async with asyncio.timeout(120):
        while (event := await connection.read_event()) is not None:
            seen.append(event)
            if event.type == "transcript":
                return seen
            if event.type == "error":  # anything after it would come at once: a ping answers
                await connection.write_event(Describe().event())
                await until(connection, "info", seen)
                return seen
    raise AssertionError(f"closed: {[e.type for e in seen]}")


def transcript(seen: list[Event]) -> Transcript:
    (found,) = [Transcript.from_event(e) for e in seen if e.type == "transcript"]
    return found


async def test_spanish_is_transcribed_in_spanish_by_the_model_that_speaks_it(
    wyoming: Wyoming,
) -> None:
    pcm, text = spanish()
    async with client(wyoming) as connection:
        by_language = await answer(connection, Transcribe(language="es"), pcm)
        by_name = await answer(connection, Transcribe(name="base", language="es-MX"), pcm)
        detected = await answer(connection, Transcribe(name="base"), pcm)
        # The next utterance asks nothing: the default (English) model, as before.
        english = await answer(connection, Transcribe(), speech_16k_pcm(SENTENCE))
    for seen in (by_language, by_name, detected):
        heard = transcript(seen)
        assert wer([text], [heard.text]) <= MAX_WER, heard.text
        assert heard.language == "es"
    assert english_wer(SENTENCE, transcript(english).text) <= 0.2


async def test_a_language_the_named_model_does_not_speak_is_refused(wyoming: Wyoming) -> None:
    pcm, _ = spanish()
    async with client(wyoming) as connection:
        refused = await answer(connection, Transcribe(name="tiny.en", language="es"), pcm)
        unknown = await answer(connection, Transcribe(language="xx"), pcm)
        no_model = await answer(connection, Transcribe(name="large-v9", language="es"), pcm)
        # Malformed asks: refused as such, and their utterance is dropped all the same.
        huge = await answer(connection, Transcribe(name="x" * 300, language="es"), pcm)
        typed = await answer(connection, Event("transcribe", {"language": 34}), pcm)
        # The connection goes on, and the next utterance is heard.
        english = await answer(connection, Transcribe(language="en"), speech_16k_pcm(SENTENCE))
    for seen, code in [
        (refused, "language_not_supported"),
        (unknown, "language_not_supported"),
        (no_model, "unknown_model"),
        (huge, "invalid_request"),
        (typed, "invalid_request"),
    ]:
        # One error, and the utterance's audio was dropped: no transcript in English.
        assert [e.type for e in seen] == ["error", "info"], [e.type for e in seen]
        assert Error.from_event(seen[0]).code == code
    assert "base" in Error.from_event(refused[0]).text
    assert english_wer(SENTENCE, transcript(english).text) <= 0.2


async def test_describe_lists_each_model_with_the_languages_it_transcribes(
    wyoming: Wyoming,
) -> None:
    async with client(wyoming) as connection:
        await connection.write_event(Describe().event())
        info = Info.from_event(await until(connection, "info", []))
    models = {m.name: m.languages for m in info.asr[0].models}
    assert models["tiny.en"] == ["en"]
    assert {"en", "es", "fr", "ru", "de"} <= set(models["base"]) and len(models["base"]) > 90
