"""The `info` answer to `describe`: what Home Assistant lists as this server's STT and TTS."""

from __future__ import annotations

import functools
from importlib.metadata import version

from wyoming.info import AsrModel, AsrProgram, Attribution, Info, TtsProgram, TtsVoice

from domain.languages import WHISPER_LANGUAGES
from entrypoints.bootstrap import Container

SERVICE = Attribution(name="voicepipe", url="https://github.com/voicepipe/voicepipe")


def info(container: Container) -> Info:
    return Info(asr=[_asr(container)], tts=[_tts(container)])


def _asr(container: Container) -> AsrProgram:
    transcriber = container.transcriber
    names = list(getattr(transcriber, "names", lambda: [transcriber.model_name])())
    models = [
        AsrModel(
            name=name,
            attribution=Attribution(
                name="OpenAI Whisper (faster-whisper)",
                url="https://github.com/SYSTRAN/faster-whisper",
            ),
            installed=True,
            description=f"Whisper {name}",
            version=None,
            languages=["en"] if name.endswith(".en") else list(WHISPER_LANGUAGES),
        )
        for name in names
    ]
    return AsrProgram(
        name="voicepipe-stt",
        attribution=SERVICE,
        installed=True,
        description="faster-whisper with voice activity detection, streamed transcripts",
        version=_version(),
        models=models,
        supports_transcript_streaming=True,
    )


def _tts(container: Container) -> TtsProgram:
    voices = [
        TtsVoice(
            name=name,
            attribution=Attribution(name=provider, url=""),
            installed=True,
            description=f"{provider} voice {name}",
            version=None,
            languages=[_language(name)],
            speakers=None,
        )
        for provider, names in container.speech.voices().items()
        for name in names
    ]
    return TtsProgram(
        name="voicepipe-tts",
        attribution=SERVICE,
        installed=True,
        description="Piper (local) or ElevenLabs with fallback, cached",
        version=_version(),
        voices=voices,
        supports_synthesize_streaming=True,
    )


def _language(voice: str) -> str:
    """Piper names start with the locale (en_US-joe-medium); other voices say nothing: en."""
    head = voice.split("-", 1)[0]
    return head if len(head) == 5 and head[2] == "_" else "en"


@functools.cache
def _version() -> str:
    return version("voicepipe")
