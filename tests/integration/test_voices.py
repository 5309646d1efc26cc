"""PIPER_VOICES: a second Piper voice, in another language, beside the bundled one (issue 27).

No Piper voice for another language installs from the registries this project reaches (PyPI,
npm, Debian: none ships an es_ES or de_DE .onnx), so the second voice is the bundled model under
the name es_ES-joe-medium with an .onnx.json that says Spanish (language.code es_ES, espeak
voice es): Piper then phonemizes with Spanish rules, so the same text is other audio. It is
listed with its language (/health, Wyoming describe), spoken through every protocol by name
(and by language in Wyoming), cached under its own key, and charged like any voice."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from websockets.sync.client import connect
from wyoming.audio import AudioChunk
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeVoice

from adapters.piper_synthesizer import bundled_voice
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.settings import Settings
from entrypoints.wyoming.service import WyomingService
from tests.integration.conftest import RunningServer
from tests.integration.test_deepgram_api import client as deepgram
from tests.integration.test_wyoming import Wyoming, until
from tests.integration.test_wyoming import client as wyoming_client

KEY = "voices-k3y-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
SPANISH = "es_ES-joe-medium"
TEXT = "La puerta principal está cerrada."


def spanish_voice(folder: Path) -> Path:
    """The bundled model as a Spanish voice: its config says es_ES and espeak's es."""
    bundled = bundled_voice()
    voice = folder / f"{SPANISH}.onnx"
    voice.symlink_to(bundled)
    config = json.loads(Path(f"{bundled}.json").read_text(encoding="utf-8"))
    config["language"] = {"code": "es_ES", "family": "es", "region": "ES"}
    config["espeak"] = {"voice": "es"}
    Path(f"{voice}.json").write_text(json.dumps(config), encoding="utf-8")
    return voice


@pytest.fixture(scope="module")
def voiced(container: Container, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wyoming]:
    folder = tmp_path_factory.mktemp("voices")
    spanish_voice(folder)
    settings = Settings(
        piper_voices=(str(folder),),
        api_keys=(KEY,),
        tts_chars_per_day=10_000,
        wyoming_uri="tcp://127.0.0.1:0",
    )
    built = bootstrap(
        settings,  # its own Piper voices, from the settings; the session's other models
        transcriber=container.transcriber,
        voice_activity=container.voice_activity,
        turns=container.listen.turns,
    )
    service = WyomingService(built)
    service.attach()
    with RunningServer(built) as running:
        yield Wyoming(running, service)


def used(server: RunningServer) -> int:
    usage = httpx.get(f"{server.url}/v1/usage", headers=AUTH)
    assert usage.status_code == 200, usage.text
    return int(usage.json()["tts_characters"]["used"])


async def synthesize(voiced: Wyoming, voice: SynthesizeVoice) -> list[Event]:
    async with wyoming_client(voiced) as connection:
        seen: list[Event] = []
        await connection.write_event(Synthesize(text=TEXT, voice=voice).event())
        async with asyncio.timeout(60):
            while (event := await connection.read_event()) is not None:
                seen.append(event)
                if event.type in ("audio-stop", "error"):
                    break
        return seen


def pcm_of(events: list[Event]) -> bytes:
    return b"".join(AudioChunk.from_event(e).audio for e in events if e.type == "audio-chunk")


def test_health_and_describe_list_the_voice_with_its_language(voiced: Wyoming) -> None:
    health = httpx.get(f"{voiced.server.url}/health").json()
    assert health["components"]["tts"]["voices"] == [
        {"provider": "piper", "name": "en_US-joe-medium", "language": "en_US"},
        {"provider": "piper", "name": SPANISH, "language": "es_ES"},
    ]

    async def describe() -> Info:
        async with wyoming_client(voiced) as connection:
            await connection.write_event(Describe().event())
            return Info.from_event(await until(connection, "info", []))

    (tts,) = asyncio.run(describe()).tts
    assert [(v.name, v.languages) for v in tts.voices] == [
        ("en_US-joe-medium", ["en_US"]),
        (SPANISH, ["es_ES"]),
    ]


def test_every_protocol_speaks_the_voice_by_name_cached_under_its_own_key(
    voiced: Wyoming,
) -> None:
    url = voiced.server.url
    before = used(voiced.server)
    with httpx.Client(base_url=url, timeout=60, headers=AUTH) as http:
        english = http.post("/api/tts", json={"text": TEXT, "format": "pcm"}).json()
        first = http.post("/api/tts", json={"text": TEXT, "format": "pcm", "voice": SPANISH})
        again = http.post("/api/tts", json={"text": TEXT, "format": "pcm", "voice": SPANISH})
    assert first.status_code == 200, first.text
    spoken, repeat = first.json(), again.json()
    assert (spoken["voice"], spoken["cached"], repeat["cached"]) == (SPANISH, False, True)
    assert english["voice"] == "en_US-joe-medium"
    # Its own cache key: the same text in English was not the Spanish voice's audio.
    spanish_pcm = base64.b64decode(spoken["audio_base64"])
    assert spanish_pcm != base64.b64decode(english["audio_base64"])
    assert base64.b64decode(repeat["audio_base64"]) == spanish_pcm

    with openai.OpenAI(api_key=KEY, base_url=f"{url}/v1", max_retries=0) as sdk:
        answer = sdk.audio.speech.with_raw_response.create(
            model="tts-1", voice=SPANISH, input=TEXT, response_format="wav"
        )
    assert answer.headers["x-voice"] == SPANISH
    assert len(answer.content) > 2 * 22_050  # a second and more of speech

    speak = deepgram(voiced.server, KEY).speak.v1.audio
    aura = {}
    for model in (SPANISH, "aura-2-celeste-es", "aura-2-thalia-en"):
        with speak.with_raw_response.generate(text=TEXT, model=model) as raw:
            assert raw.headers["dg-model-name"] == model
            aura[model] = b"".join(raw.data)
    assert len(aura[SPANISH]) > 20_000  # a second and more of 24 kHz speech
    # A Spanish Aura model is the Spanish voice; an English one the default voice.
    assert aura["aura-2-celeste-es"] == aura[SPANISH] != aura["aura-2-thalia-en"]

    with connect(voiced.server.ws_url, max_size=None, additional_headers=AUTH) as ws:
        ws.send(json.dumps({"type": "text", "text": TEXT, "voice": SPANISH, "format": "pcm"}))
        reply = json.loads(ws.recv(timeout=60))
    assert (reply["type"], reply["voice"], reply["cached"]) == ("audio", SPANISH, True)

    # Charged as any voice: every character of every request that spoke.
    assert used(voiced.server) - before == 8 * len(TEXT)  # the cached repeats too


def test_wyoming_picks_the_voice_by_name_or_by_language(voiced: Wyoming) -> None:
    by_name = asyncio.run(synthesize(voiced, SynthesizeVoice(name=SPANISH)))
    by_language = asyncio.run(synthesize(voiced, SynthesizeVoice(language="es")))
    by_locale = asyncio.run(synthesize(voiced, SynthesizeVoice(language="es-ES")))
    english = asyncio.run(synthesize(voiced, SynthesizeVoice(language="en")))
    assert pcm_of(by_name) and pcm_of(by_name) == pcm_of(by_language) == pcm_of(by_locale)
    assert pcm_of(english) and pcm_of(english) != pcm_of(by_name)
    # A language no voice speaks is refused, not spoken in English; the name still wins.
    refused = asyncio.run(synthesize(voiced, SynthesizeVoice(language="fr")))
    named = asyncio.run(synthesize(voiced, SynthesizeVoice(name=SPANISH, language="fr")))
    assert [e.type for e in refused] == ["error"]
    error = Error.from_event(refused[0])
    assert error.code == "unknown_voice" and "fr" in error.text and "PIPER_VOICES" in error.text
    assert pcm_of(named) == pcm_of(by_name)
    # Hostile values: a clear code each, never audio in another voice.
    for asked, code in [
        (SynthesizeVoice(name="x" * 300), "invalid_request"),
        (SynthesizeVoice(language="x" * 300), "invalid_request"),
        (SynthesizeVoice(name="es_ES-nobody"), "unknown_voice"),
    ]:
        answer = asyncio.run(synthesize(voiced, asked))
        assert [(e.type, Error.from_event(e).code) for e in answer] == [("error", code)]
