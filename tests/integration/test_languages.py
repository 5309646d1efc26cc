"""Many languages with the optional multilingual model: detection and translation, offline.

Speech comes from Debian's espeak-ng (installed by .ci/run), in German, Spanish and French.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import openai
import pytest

from tests.integration.conftest import RunningServer

# espeak-ng's voices are robotic: these renderings (text and speed) are ones the base model
# identifies; French needs a slower voice. The same audio always gives the same result.
SPEECH = {
    "de": ("Guten Morgen. Ich möchte heute Abend einen Tisch für zwei Personen reservieren. "
           "Vielen Dank für Ihre Hilfe, und bis später.", ()),
    "es": ("Buenos días. Me gustaría reservar una mesa para dos personas esta noche. "
           "Muchas gracias por su ayuda, hasta luego.", ()),
    "fr": ("Bonjour. Je voudrais réserver une table pour deux personnes ce soir, s'il vous "
           "plaît. Merci beaucoup pour votre aide, à plus tard.", ("-s", "130")),
}  # fmt: skip


def espeak(language: str, text: str | None = None) -> bytes:
    binary = shutil.which("espeak-ng")
    assert binary, "espeak-ng is not installed (apt-get install espeak-ng)"
    words, options = SPEECH.get(language, ("", ()))
    command = [binary, "-v", language, *options, "--stdout", text or words]
    return subprocess.run(command, capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key="unused", base_url=f"{server.url}/v1", max_retries=0) as c:
        yield c


@pytest.mark.parametrize("language", sorted(SPEECH))
def test_language_is_detected(client: openai.OpenAI, language: str) -> None:
    result = client.audio.transcriptions.create(
        model="base",
        file=(f"{language}.wav", espeak(language)),
        response_format="verbose_json",
    )
    names = {"de": "german", "es": "spanish", "fr": "french"}
    assert result.language == names[language]
    assert len(result.text.split()) >= 5


def test_german_is_translated_to_english(client: openai.OpenAI) -> None:
    result = client.audio.translations.create(model="base", file=("de.wav", espeak("de")))
    text = result.text.lower()
    assert "good morning" in text and "thank you" in text, result.text
    assert not {"guten", "morgen", "vielen", "dank"} & set(text.replace(",", " ").split())


def test_the_english_model_cannot_translate(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.translations.create(model="whisper-1", file=("de.wav", espeak("de", "Hallo")))
    assert isinstance(raised.value.body, dict) and raised.value.body["code"] == "unsupported_task"


def test_unknown_models_are_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.transcriptions.create(model="large-v9", file=("x.wav", espeak("en", "Hi")))
    assert isinstance(raised.value.body, dict) and raised.value.body["code"] == "unknown_model"
    assert "base" in {m.id for m in client.models.list()}
