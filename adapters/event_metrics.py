"""Domain events folded into OpenTelemetry instruments: the one source of the service's metrics.

Nothing in the pipeline touches a counter; it records events, and this subscriber turns each
batch into counts and histograms. It sees the events this instance appends, so a Prometheus
sum over instances gives the cluster totals without double counting a shared Redis stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from domain.events import (
    STEP_OF,
    AudioDecoded,
    AudioStreamed,
    CacheLookedUp,
    CircuitClosed,
    CircuitHalfOpened,
    CircuitOpened,
    DomainEvent,
    ProviderFailed,
    ProviderFellBack,
    ReplyInterrupted,
    RequestCompleted,
    RequestFailed,
    RequestReceived,
    SpeechSynthesized,
    SpeechTranscribed,
    StepDegraded,
    VoiceReplied,
)

# Seconds: from a 1 ms cache hit to a minute-long transcription.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
# Model seconds per second of audio: below 1 is faster than real time.
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)
CIRCUIT_STATES = {CircuitClosed: 0, CircuitHalfOpened: 1, CircuitOpened: 2}
CIRCUIT_NAMES = {0: "closed", 1: "half_open", 2: "open"}


Labels = tuple[tuple[str, str], ...]


class _Counts:
    """A monotonic sum per label set, read by an observable counter when metrics are collected.

    Counting in a dict costs about a microsecond; a synchronous SDK counter costs ~15 µs a call,
    which on a 1 ms cached request is most of the telemetry budget.
    """

    def __init__(self, meter: Meter, name: str, unit: str, description: str) -> None:
        self.values: dict[Labels, float] = {}
        meter.create_observable_counter(name, [self._observe], unit, description)

    def add(self, amount: float, *labels: tuple[str, str]) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def _observe(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, dict(labels)) for labels, value in list(self.values.items())]


class EventMetrics:
    """Subscriber: call `observe` with every batch of events this instance appends."""

    def __init__(self, meter: Meter) -> None:
        self.circuits: dict[str, int] = {}  # provider -> state; every provider starts closed
        self.requests = _Counts(
            meter, "voicepipe.requests", "{request}", "Requests answered, by outcome"
        )
        self.request_duration = meter.create_histogram(
            "voicepipe.request.duration",
            "s",
            "Time from receiving a request to its result",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )
        self.step_duration = meter.create_histogram(
            "voicepipe.step.duration",
            "s",
            "Time spent in one pipeline step (cache, synthesis, processing, ...)",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )
        self.first_audio = meter.create_histogram(
            "voicepipe.tts.time_to_first_audio",
            "s",
            "Streamed TTS: from the request to its first audio chunk",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )
        self.final_lag = meter.create_histogram(
            "voicepipe.stt.end_of_speech_to_final",
            "s",
            "Streaming STT: from the end of speech to the final transcript",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )
        self.voice_to_voice = meter.create_histogram(
            "voicepipe.realtime.voice_to_voice",
            "s",
            "Realtime conversations: from the end of the user's speech to the answer's first audio",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )
        self.interruptions = _Counts(
            meter, "voicepipe.realtime.interruptions", "{response}", "Answers the user spoke over"
        )
        self.real_time_factor = meter.create_histogram(
            "voicepipe.model.real_time_factor",
            "1",
            "Model time divided by audio duration (below 1: faster than real time)",
            explicit_bucket_boundaries_advisory=RTF_BUCKETS,
        )
        self.cache_lookups = _Counts(
            meter, "voicepipe.cache.lookups", "{lookup}", "TTS cache lookups (hit, miss, error)"
        )
        self.provider_failures = _Counts(
            meter, "voicepipe.provider.failures", "{failure}", "TTS provider failures"
        )
        self.fallbacks = _Counts(
            meter, "voicepipe.provider.fallbacks", "{request}", "Served by a later provider"
        )
        self.circuit_transitions = _Counts(
            meter, "voicepipe.circuit.transitions", "{transition}", "Circuit breaker changes"
        )
        self.busy = _Counts(
            meter, "voicepipe.busy.rejections", "{request}", "Refused: a model queue is full"
        )
        self.degraded = _Counts(
            meter, "voicepipe.degraded.steps", "{step}", "Optional steps skipped after a failure"
        )
        self.audio = _Counts(
            meter, "voicepipe.audio.processed", "s", "Seconds of audio synthesized or transcribed"
        )
        meter.create_observable_gauge(
            "voicepipe.circuit.state",
            [self._circuit_states],
            "1",
            "Circuit breaker state per provider: 0 closed, 1 half open, 2 open",
        )

    def _circuit_states(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(state, {"provider": p}) for p, state in list(self.circuits.items())]

    def observe(self, events: Sequence[DomainEvent]) -> None:
        origins: dict[str, tuple[str, str]] = {}  # pipeline id -> (pipeline, transport)
        for event in events:
            if isinstance(event, RequestReceived):
                origins[event.pipeline_id] = (event.pipeline, event.transport)
        for event in events:
            pipeline, transport = origins.get(event.pipeline_id, ("", ""))
            self._one(event, pipeline or _pipeline_of(event), transport)

    def _one(self, event: DomainEvent, pipeline: str, transport: str) -> None:
        step = STEP_OF.get(type(event))
        if step is not None:
            model = getattr(event, "provider", None) or getattr(event, "model", "")
            self.step_duration.record(
                event.latency_ms / 1000,  # type: ignore[union-attr]
                {"pipeline": pipeline, "step": step, "provider": model},
            )
        if isinstance(event, RequestCompleted | RequestFailed):
            self._finished(event, transport)
        elif isinstance(event, CacheLookedUp):
            self.cache_lookups.add(1, ("result", "hit" if event.hit else "miss"))
        elif isinstance(event, SpeechSynthesized | SpeechTranscribed):
            self._model_ran(event, pipeline)
        elif isinstance(event, AudioStreamed) and event.chunks:
            self.first_audio.record(event.first_chunk_ms / 1000, {"transport": transport})
        elif isinstance(event, ProviderFailed):
            self.provider_failures.add(1, ("provider", event.provider), ("code", event.code))
        elif isinstance(event, ProviderFellBack):
            self.fallbacks.add(
                1, ("from_provider", event.from_provider), ("to_provider", event.to_provider)
            )
        elif isinstance(event, CircuitOpened | CircuitHalfOpened | CircuitClosed):
            state = CIRCUIT_STATES[type(event)]
            self.circuits[event.provider] = state
            self.circuit_transitions.add(
                1, ("provider", event.provider), ("state", CIRCUIT_NAMES[state])
            )
        elif isinstance(event, VoiceReplied):
            self.voice_to_voice.record(event.voice_to_voice_ms / 1000)
        elif isinstance(event, ReplyInterrupted):
            self.interruptions.add(1)
        elif isinstance(event, StepDegraded):
            self.degraded.add(1, ("step", event.step), ("code", event.code))
            if event.step == "cache":
                self.cache_lookups.add(1, ("result", "error"))

    def _finished(self, event: RequestCompleted | RequestFailed, transport: str) -> None:
        ok = isinstance(event, RequestCompleted)
        outcome = "ok" if ok else event.code  # type: ignore[union-attr]
        pipeline = ("pipeline", event.pipeline)
        self.requests.add(1, pipeline, ("transport", transport), ("outcome", outcome))
        cached = "true" if ok and event.cached else "false"  # type: ignore[union-attr]
        self.request_duration.record(
            event.latency_ms / 1000,
            {
                "pipeline": event.pipeline,
                "transport": transport,
                "outcome": "ok" if ok else "error",
                "cached": cached,
            },
        )
        if outcome == "busy":
            self.busy.add(1, pipeline)

    def _model_ran(self, event: SpeechSynthesized | SpeechTranscribed, pipeline: str) -> None:
        model = event.provider if isinstance(event, SpeechSynthesized) else event.model
        if event.audio_ms > 0:
            self.audio.add(event.audio_ms / 1000, ("pipeline", pipeline), ("model", model))
            self.real_time_factor.record(
                event.latency_ms / event.audio_ms, {"pipeline": pipeline, "model": model}
            )
        if isinstance(event, SpeechTranscribed) and event.end_of_speech_ms is not None:
            self.final_lag.record(event.end_of_speech_ms / 1000, {"model": model})


def _pipeline_of(event: DomainEvent) -> str:
    if isinstance(event, AudioDecoded | SpeechTranscribed):
        return "stt"
    return "tts"
