"""Composition root: settings -> adapters -> use cases. The one place that picks adapters.

Every dependency is a keyword argument; None means the production default, built here
(not in the signature) so tests can swap any adapter in one line.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from application.ports import (
    AudioCache,
    AudioCodec,
    AudioProcessor,
    Clock,
    EventLog,
    SentimentAnalyzer,
    SpeechSynthesizer,
    Transcriber,
)
from application.stats import StatsProjector
from application.synthesize_speech import SynthesizeSpeech
from application.transcribe_audio import TranscribeAudio
from entrypoints.settings import Settings, SettingsError

log = structlog.get_logger(__name__)


@dataclass
class Container:
    """What the entrypoints need, built once at start-up."""

    settings: Settings
    synthesize: SynthesizeSpeech
    transcribe: TranscribeAudio
    projector: StatsProjector
    components: dict[str, Any] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)
    warnings: list[str] = field(default_factory=list)


def bootstrap(
    settings: Settings,
    *,
    synthesizers: Sequence[SpeechSynthesizer] | None = None,
    transcriber: Transcriber | None = None,
    processor: AudioProcessor | None = None,
    codec: AudioCodec | None = None,
    sentiment: SentimentAnalyzer | None = None,
    cache: AudioCache | None = None,
    events: EventLog | None = None,
    clock: Clock | None = None,
) -> Container:
    """Build the service; loads the models (seconds), so call it once at start-up."""
    started = time.monotonic()
    clock = clock or _system_clock()
    warnings: list[str] = []
    synthesizers = synthesizers or _synthesizers(settings, warnings)
    transcriber = transcriber or _transcriber(settings)
    codec = codec or _codec(settings)
    processor = processor or _processor()
    sentiment = sentiment or _sentiment()
    cache = cache or _cache(settings, clock)
    events = events or _event_log(settings)
    container = Container(
        settings=settings,
        synthesize=SynthesizeSpeech(
            synthesizers=synthesizers,
            processor=processor,
            codec=codec,
            sentiment=sentiment,
            cache=cache,
            events=events,
            clock=clock,
            max_text_chars=settings.max_text_chars,
        ),
        transcribe=TranscribeAudio(
            transcriber=transcriber,
            codec=codec,
            sentiment=sentiment,
            events=events,
            clock=clock,
            max_audio_bytes=settings.max_audio_bytes,
            max_audio_seconds=settings.max_audio_seconds,
        ),
        projector=StatsProjector(events),
        components={
            "synthesizers": synthesizers,
            "transcriber": transcriber,
            "cache": cache,
            "event_log": events,
        },
        warnings=warnings,
    )
    log.info("components ready", load_seconds=round(time.monotonic() - started, 3))
    return container


def _system_clock() -> Clock:
    from adapters.system_clock import SystemClock

    return SystemClock()


def _synthesizers(settings: Settings, warnings: list[str]) -> list[SpeechSynthesizer]:
    from adapters.piper_synthesizer import PiperSynthesizer, bundled_voice

    found: list[SpeechSynthesizer] = []
    for provider in settings.tts_providers:
        if provider == "piper":
            voice = Path(settings.piper_voice) if settings.piper_voice else bundled_voice()
            if not voice.is_file() or not Path(f"{voice}.json").is_file():
                raise SettingsError(f"PIPER_VOICE={voice}: need the .onnx file and its .onnx.json")
            found.append(PiperSynthesizer([voice]))
        else:
            warnings.append(f"TTS provider {provider!r} is not available in this build; skipped")
    if not found:
        warnings.append("no TTS provider configured could start; using piper")
        found.append(PiperSynthesizer([bundled_voice()]))
    for warning in warnings:
        log.warning(warning)
    return found


def _transcriber(settings: Settings) -> Transcriber:
    from adapters.faster_whisper_transcriber import FasterWhisperTranscriber, bundled_model

    model = settings.whisper_model or str(bundled_model())
    name = None if settings.whisper_model else "tiny.en"
    try:
        return FasterWhisperTranscriber(
            model,
            device=settings.whisper_device,
            compute_type=settings.whisper_compute_type,
            threads=settings.whisper_threads or None,
            beam_size=settings.whisper_beam_size,
            name=name,
        )
    except Exception as error:  # a model name that is not on disk, a bad device, ...
        raise SettingsError(
            f"WHISPER_MODEL={model}: cannot load it on {settings.whisper_device} "
            f"({settings.whisper_compute_type}): {type(error).__name__}. Use a faster-whisper "
            "model directory, or a model name already in the Hugging Face cache."
        ) from error


def _codec(settings: Settings) -> AudioCodec:
    from adapters.pyav_codec import PyAVAudioCodec

    return PyAVAudioCodec(max_seconds=settings.max_audio_seconds)


def _processor() -> AudioProcessor:
    from adapters.pydub_processor import PydubAudioProcessor

    return PydubAudioProcessor()


def _sentiment() -> SentimentAnalyzer:
    from adapters.textblob_sentiment import TextBlobSentimentAnalyzer

    return TextBlobSentimentAnalyzer()


def _cache(settings: Settings, clock: Clock) -> AudioCache:
    from adapters.memory_cache import InMemoryAudioCache

    return InMemoryAudioCache(
        max_bytes=settings.cache_max_bytes, ttl_seconds=settings.cache_ttl_seconds, clock=clock
    )


def _event_log(settings: Settings) -> EventLog:
    from adapters.memory_event_log import InMemoryEventLog

    return InMemoryEventLog(retention=settings.event_retention)
