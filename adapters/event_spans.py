"""Domain events turned into trace spans: a child of the request's span per pipeline step.

Events carry when each step ended and how long it took, so spans are built after the fact
with their real start and end times, as children of whatever span is current (the HTTP
request or the WebSocket message that ran the pipeline).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode, Tracer

from domain.events import (
    STEP_OF,
    AudioDecoded,
    AudioEncoded,
    AudioProcessed,
    AudioStreamed,
    CacheLookedUp,
    CircuitClosed,
    CircuitHalfOpened,
    CircuitOpened,
    DomainEvent,
    ProviderFailed,
    ProviderFellBack,
    RequestCompleted,
    RequestFailed,
    RequestReceived,
    SentimentAnalysed,
    SpeechSynthesized,
    SpeechTranscribed,
    StepDegraded,
)

A = "voicepipe."  # attribute prefix


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _step(event: DomainEvent) -> str | None:
    """The step a span stands for; a failed provider call is a synthesis attempt too."""
    return "synthesis" if isinstance(event, ProviderFailed) else STEP_OF.get(type(event))


def _step_attributes(event: DomainEvent) -> dict[str, Any]:
    if isinstance(event, CacheLookedUp):
        return {A + "cache.hit": event.hit}
    if isinstance(event, SpeechSynthesized):
        return {
            A + "provider": event.provider,
            A + "voice": event.voice,
            A + "audio.duration_ms": event.audio_ms,
        }
    if isinstance(event, ProviderFailed):
        return {A + "provider": event.provider, "error.type": event.code}
    if isinstance(event, AudioProcessed):
        return {A + "gain_db": event.gain_db, A + "trimmed_ms": event.trimmed_ms}
    if isinstance(event, AudioEncoded):
        return {A + "audio.format": event.audio_format, A + "audio.bytes": event.size}
    if isinstance(event, SentimentAnalysed):
        return {A + "sentiment.label": event.label}
    if isinstance(event, AudioDecoded):
        return {A + "audio.bytes": event.size, A + "audio.duration_ms": event.audio_ms}
    if isinstance(event, SpeechTranscribed):
        return {
            A + "model": event.model,
            A + "language": event.language,
            A + "language_probability": event.language_probability,
            A + "audio.duration_ms": event.audio_ms,
            A + "segments": event.segments,
        }
    return {}


class EventSpans:
    """Subscriber: call `observe` with each batch of events, in the context of the request."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def observe(self, events: Sequence[DomainEvent]) -> None:
        runs: dict[str, list[DomainEvent]] = {}
        for event in events:
            runs.setdefault(event.pipeline_id, []).append(event)
        for run in runs.values():
            self._run(run)

    def _run(self, events: list[DomainEvent]) -> None:
        """Steps become children of the request's span, which gets the run's attributes.

        A run with no live span around it (a streamed utterance, a stream that outlived its
        message) gets a span of its own, named after its pipeline, with the run's timing.
        """
        first, last = events[0], events[-1]
        name = first.pipeline if isinstance(first, RequestReceived) else "pipeline"
        attributes: dict[str, Any] = {A + "pipeline_id": first.pipeline_id}
        if isinstance(first, RequestReceived):
            attributes[A + "transport"] = first.transport
            attributes[A + "input_size"] = first.input_size
            if first.pipeline == "tts":
                attributes[A + "fallback"] = False
        span = trace.get_current_span()
        context = span.get_span_context()
        if context.is_valid and not context.trace_flags.sampled:
            return  # an unsampled trace: nothing here would be recorded
        own = not span.is_recording()  # no request span, or one that already ended
        if own:
            span = self.tracer.start_span(
                name, start_time=_ns(first.occurred_at), attributes=attributes
            )
        else:
            span.set_attributes(attributes)
        parent = trace.set_span_in_context(span)
        for event in events:
            step = _step(event)
            if step is not None:
                self._child(event, f"{name}.{step}", _step_attributes(event), parent)
            self._annotate(span, event)
        if own:
            span.end(end_time=_ns(last.occurred_at))

    def _child(
        self, event: DomainEvent, name: str, attributes: dict[str, Any], parent: Any
    ) -> None:
        latency_ms: float = event.latency_ms  # type: ignore[union-attr]
        end = _ns(event.occurred_at)
        child = self.tracer.start_span(
            name, context=parent, start_time=end - int(latency_ms * 1e6), attributes=attributes
        )
        if isinstance(event, ProviderFailed):
            child.set_status(Status(StatusCode.ERROR, event.code))
        child.end(end_time=end)

    @staticmethod
    def _annotate(span: trace.Span, event: DomainEvent) -> None:
        at = _ns(event.occurred_at)
        if isinstance(event, SpeechSynthesized):
            span.set_attributes({A + "provider": event.provider, A + "voice": event.voice})
        elif isinstance(event, SpeechTranscribed):
            span.set_attributes({A + "model": event.model, A + "language": event.language})
            span.set_attribute(A + "audio.duration_ms", event.audio_ms)
        elif isinstance(event, CacheLookedUp):
            span.set_attribute(A + "cache.hit", event.hit)
        elif isinstance(event, ProviderFellBack):
            span.set_attribute(A + "fallback", True)
            span.add_event("fallback", {"from": event.from_provider, "to": event.to_provider}, at)
        elif isinstance(event, CircuitOpened | CircuitHalfOpened | CircuitClosed):
            span.add_event(type(event).__name__, {A + "provider": event.provider}, at)
        elif isinstance(event, StepDegraded):
            span.add_event("degraded", {"step": event.step, "code": event.code}, at)
        elif isinstance(event, AudioStreamed):
            span.set_attributes(
                {
                    A + "stream.chunks": event.chunks,
                    A + "stream.first_chunk_ms": event.first_chunk_ms,
                    A + "stream.cancelled": event.cancelled,
                    A + "audio.duration_ms": event.audio_ms,
                }
            )
        elif isinstance(event, RequestCompleted):
            span.set_attribute(A + "cached", event.cached)
        elif isinstance(event, RequestFailed):
            span.set_attributes({"error.type": event.code, A + "failed_step": event.step})
            span.set_status(Status(StatusCode.ERROR, f"{event.step}: {event.code}"))
            span.add_event("exception", {"exception.type": event.code}, at)
