"""The `info` answer to `describe`: what Home Assistant lists as this server's STT and TTS."""

from __future__ import annotations

from importlib.metadata import version

from wyoming.info import AsrModel, AsrProgram, Attribution, Info, TtsProgram, TtsVoice

from application.catalog import Catalog

SERVICE = Attribution(name="voicepipe", url="https://github.com/voicepipe/voicepipe")
VERSION = version("voicepipe")  # read once: metadata lookups scan the installed packages
WHISPER = Attribution("OpenAI Whisper (faster-whisper)",
                      "https://github.com/SYSTRAN/faster-whisper")  # fmt: skip


def info(catalog: Catalog) -> Info:
    models = [
        AsrModel(m.name, WHISPER, True, f"Whisper {m.name}", None, list(m.languages))
        for m in catalog.models()
    ]
    voices = [
        TtsVoice(v.name, Attribution(v.provider, ""), True, v.provider, None, [v.language])
        for v in catalog.voices()
    ]
    about = "faster-whisper with voice activity detection, streamed transcripts"
    asr = AsrProgram("voicepipe-stt", SERVICE, True, about, VERSION, models, True)
    about = "Piper (local) or ElevenLabs with fallback, cached"
    tts = TtsProgram("voicepipe-tts", SERVICE, True, about, VERSION, voices, True)
    return Info(asr=[asr], tts=[tts])
