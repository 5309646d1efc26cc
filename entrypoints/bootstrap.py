"""Composition root: settings -> adapters -> use cases. The one place that picks adapters.

Every dependency is a keyword argument; None means the production default, built here
(not in the signature) so tests can swap any adapter in one line.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import structlog

from adapters.otel_telemetry import Telemetry, build_telemetry
from application.admission import Admission
from application.catalog import Catalog
from application.connections import Connections
from application.conversation_session import Conversations
from application.fleet_stats import FleetStats
from application.health import Health
from application.listening_session import StartListening
from application.ports import (
    AudioCache,
    AudioCodec,
    AudioConverter,
    AudioProcessor,
    BreakerStore,
    Clock,
    Denoiser,
    EventLog,
    LanguageModel,
    LimitStore,
    SentimentAnalyzer,
    SpeechSynthesizer,
    Transcriber,
    TurnDetector,
    VoiceActivityDetector,
)
from application.provider_chain import ProviderChain
from application.replying import Responding
from application.retention import Retention
from application.shared_breakers import SharedBreakers
from application.speaking import Speaking
from application.speech_pipeline import SpeechPipeline
from application.stats import StatsProjector
from application.stream_speech import StreamSpeech
from application.synthesize_speech import SynthesizeSpeech
from application.transcribe_audio import TranscribeAudio
from application.transcribing import Transcribing
from entrypoints import policies, speech_models, wiring
from entrypoints.container import Container as Container
from entrypoints.container import Hook
from entrypoints.settings import Settings

log = structlog.get_logger(__name__)


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
    voice_activity: VoiceActivityDetector | None = None,
    telemetry: Telemetry | None = None,
    limits: LimitStore | None = None,
    converter: AudioConverter | None = None,
    language_model: LanguageModel | None = None,
    turns: TurnDetector | None = None,
    breakers: BreakerStore | None = None,
    denoiser: Denoiser | None = None,
) -> Container:
    """Build the service; loads the models (seconds), so call it once at start-up."""
    started = time.monotonic()
    clock = clock or wiring.system_clock()
    warnings: list[str] = []
    on_start: list[Hook] = []
    on_stop: list[Hook] = []
    codec = codec or wiring.codec(settings)
    synthesizers = synthesizers or speech_models.synthesizers(settings, warnings, codec, on_start)
    transcriber = transcriber or speech_models.transcriber(settings)
    processor = processor or wiring.processor()
    sentiment = sentiment or wiring.sentiment()
    link = None
    if settings.redis_enabled and (cache is None or events is None or limits is None):
        link = wiring.redis_link(settings, on_start, on_stop)
        cache = cache or wiring.redis_cache(settings, link)
        if settings.event_log != "memory":
            events = events or wiring.redis_event_log(settings, link, on_start, on_stop)
    limits = limits or wiring.limits(settings, link)
    cache = cache or wiring.cache(settings, clock)
    events = events or wiring.event_log(settings)
    telemetry = telemetry or build_telemetry()
    stored_events = events
    if telemetry.subscribers:
        events = wiring.observed(events, telemetry.subscribers)
    projector = StatsProjector(events)
    fleet_stats = None
    board = wiring.stats_board(settings, stored_events) if link is not None else None
    if board is not None:  # one leader folds the shared stream; the others read its result
        fleet_stats = FleetStats(projector, board)
        events = fleet_stats.track(events)
        on_stop.append(fleet_stats.release)
    for synthesizer in synthesizers:
        telemetry.metrics.circuits.setdefault(synthesizer.provider, 0)
        _watch_queue(telemetry, "tts", synthesizer.provider, synthesizer)
    _watch_queue(telemetry, "stt", transcriber.model_name, transcriber)
    speech = SpeechPipeline(
        providers=ProviderChain(
            synthesizers,
            clock,
            policies.circuit(settings),
        ),
        processor=processor,
        codec=codec,
        sentiment=sentiment,
        cache=cache,
        events=events,
        clock=clock,
        max_text_chars=settings.max_text_chars,
    )
    if converter is None:
        from adapters.pyav_audio_streams import PyAVAudioConverter

        converter = PyAVAudioConverter()
    voice_activity = voice_activity or speech_models.voice_activity()
    if turns is None:  # also for the Realtime API's semantic_vad, whatever the default
        turns = speech_models.turn_detector(warnings, settings.stt_turn_detection == "semantic")
    transcribe = TranscribeAudio(
        transcriber=transcriber,
        codec=codec,
        sentiment=sentiment,
        events=events,
        clock=clock,
        max_audio_bytes=settings.max_audio_bytes,
        max_audio_seconds=settings.max_audio_seconds,
    )
    access = policies.access(settings, limits, clock)
    breakers = breakers or wiring.breaker_store(settings, link, clock)
    shared = None
    if breakers is not None:
        shared = SharedBreakers(
            speech.providers,
            breakers,
            events,
            clock,
            cooldown_seconds=settings.breaker_cooldown_seconds,
            interval=settings.breaker_sync_seconds,
        )
    retention = Retention(settings.retain_content)
    synthesize, streams = SynthesizeSpeech(speech), StreamSpeech(speech)
    speaking = Speaking(
        synthesize=synthesize,
        streams=streams,
        access=access,
        retention=retention,
        converter=converter,
    )
    language_model = language_model or speech_models.language_model(settings, on_stop)
    listen = StartListening(
        transcriber=transcriber,
        transcribe=transcribe,
        voice_activity=voice_activity,
        converter=converter,
        access=access,
        clock=clock,
        limits=policies.listening(settings),
        turns=turns,
        denoiser=denoiser or speech_models.denoiser(on_stop),
        noise_reduction=policies.noise_reduction(settings),
    )
    responding = Responding(
        model=language_model,
        speaking=speaking,
        converter=converter,
        events=events,
        clock=clock,
        max_text_chars=settings.max_text_chars,
        answer_seconds=settings.llm_answer_seconds,
    )
    container = Container(
        settings=settings,
        speech=speech,
        synthesize=synthesize,
        stream_speech=streams,
        speaking=speaking,
        responding=responding,
        conversations=Conversations(
            responding=responding,
            listen=listen,
            access=access,
            clock=clock,
            limits=policies.conversations(settings),
        ),
        admission=Admission(access),
        catalog=Catalog(transcriber=transcriber, speech=speech),
        health=Health(
            speech=speech,
            transcriber=transcriber,
            cache=cache,
            event_log=stored_events,
            warnings=warnings,
            saturated_at=settings.ready_queue_fraction,
        ),
        transcribing=Transcribing(transcribe=transcribe, access=access, retention=retention),
        voice_activity=voice_activity,
        transcribe=transcribe,
        listen=listen,
        projector=projector,
        fleet_stats=fleet_stats,
        telemetry=telemetry,
        access=access,
        connections=Connections(access, clock, policies.connections(settings)),
        clock=clock,
        transcriber=transcriber,
        cache=cache,
        event_log=stored_events,
        warnings=warnings,
        shared_breakers=shared,
        on_start=on_start,
        on_stop=on_stop,
    )
    log.info("components ready", load_seconds=round(time.monotonic() - started, 3))
    return container


def _watch_queue(telemetry: Telemetry, pipeline: str, model: str, component: object) -> None:
    if hasattr(component, "queued"):
        labels = {"pipeline": pipeline, "model": model}
        telemetry.queues.append((labels, lambda: int(getattr(component, "queued", 0))))
