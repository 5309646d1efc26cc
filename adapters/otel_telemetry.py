"""OpenTelemetry assembled from the standard OTEL_* variables: tracer, meter, exporters.

- Metrics: Prometheus text at GET /metrics (always, unless OTEL_SDK_DISABLED=true); OTLP when
  OTEL_METRICS_EXPORTER names it or an OTLP endpoint is set; `console` for development.
- Traces: OTLP when OTEL_TRACES_EXPORTER names it or an OTLP endpoint is set; `console` for
  development. With no trace exporter, spans are not recorded but still carry trace ids, so
  logs and error bodies can be matched to a caller's trace.
Exporters run in background threads: a collector that is down costs dropped telemetry and a
warning, never a failed or slower request.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    ExemplarFilter,
    MeterProvider,
    TraceBasedExemplarFilter,
)
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from prometheus_client import CollectorRegistry, generate_latest

from adapters.event_metrics import EventMetrics
from adapters.event_spans import EventSpans
from adapters.observed_event_log import Subscriber

log = logging.getLogger(__name__)

SCOPE = "voicepipe"


@dataclass
class Telemetry:
    tracer: trace.Tracer
    meter: metrics.Meter
    metrics: EventMetrics
    registry: CollectorRegistry | None = None  # set when Prometheus text is served
    subscribers: list[Subscriber] = field(default_factory=list)
    shutdowns: list[Callable[[], Any]] = field(default_factory=list)
    exporting: dict[str, list[str]] = field(default_factory=dict)  # for /health
    recording: bool = False  # spans are sampled and exported somewhere
    enabled: bool = True  # False: OTEL_SDK_DISABLED, no telemetry at all
    # Live state read at collection time (not counters): set by the entrypoints.
    connections: Callable[[], int] = lambda: 0
    queues: list[tuple[dict[str, str], Callable[[], int]]] = field(default_factory=list)

    def prometheus_text(self) -> bytes | None:
        return generate_latest(self.registry) if self.registry is not None else None

    def shutdown(self, seconds: float = 3.0) -> None:
        """Flush exporters, bounded: an unreachable collector must not hold up a restart."""
        for stop in self.shutdowns:
            worker = threading.Thread(target=stop, daemon=True, name="otel-shutdown")
            worker.start()
            worker.join(seconds)

    def _live(self) -> None:
        self.meter.create_observable_up_down_counter(
            "voicepipe.websocket.connections",
            [lambda _: [Observation(self.connections())]],
            "{connection}",
            "Open WebSocket connections",
        )
        self.meter.create_observable_gauge(
            "voicepipe.queue.depth",
            [self._queue_depths],
            "{request}",
            "Requests waiting for or running on a model, per model",
        )

    def _queue_depths(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(read(), labels) for labels, read in self.queues]


def _names(env: Mapping[str, str], variable: str, default: str) -> set[str]:
    raw = env.get(variable, "").strip() or default
    return {name.strip().lower() for name in raw.split(",") if name.strip()} - {"none"}


def _protocol(env: Mapping[str, str], signal: str) -> str:
    return (
        env.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()


def _has_endpoint(env: Mapping[str, str], signal: str) -> bool:
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    )


def _otlp_spans(env: Mapping[str, str]) -> SpanExporter:
    if _protocol(env, "TRACES") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    return HttpSpanExporter()


def _otlp_metrics(env: Mapping[str, str]) -> MetricReader:
    if _protocol(env, "METRICS") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return PeriodicExportingMetricReader(OTLPMetricExporter())
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetricExporter,
    )

    return PeriodicExportingMetricReader(HttpMetricExporter())


def _exemplar_filter(name: str) -> ExemplarFilter:
    if name == "trace_based":
        return TraceBasedExemplarFilter()
    return AlwaysOnExemplarFilter() if name == "always_on" else AlwaysOffExemplarFilter()


def _resource(env: Mapping[str, str]) -> Resource:
    attributes: dict[str, str] = {}
    named = "OTEL_SERVICE_NAME" in env or "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    if not named:
        attributes["service.name"] = "voicepipe"
    return Resource.create(attributes)


def build_telemetry(
    *,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
) -> Telemetry:
    """Tracer and meter per the environment; tests pass an in-memory exporter and reader.

    The OTLP exporters read their endpoint, headers and timeout from the OTEL_* variables too.
    """
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        off = metrics.NoOpMeter(SCOPE)
        disabled: dict[str, list[str]] = {"metrics": [], "traces": []}
        return Telemetry(
            trace.NoOpTracer(), off, EventMetrics(off), exporting=disabled, enabled=False
        )
    resource = _resource(env)
    readers: list[MetricReader] = [metric_reader] if metric_reader is not None else []
    chosen = _names(env, "OTEL_METRICS_EXPORTER", "prometheus")
    if _has_endpoint(env, "METRICS") and "OTEL_METRICS_EXPORTER" not in env:
        chosen.add("otlp")
    registry = None
    if "prometheus" in chosen:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader

        registry = CollectorRegistry()
        readers.append(PrometheusMetricReader(registry=registry))
    if "otlp" in chosen:
        readers.append(_otlp_metrics(env))
    if "console" in chosen:
        readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
    # Exemplars cost ~30% of each measurement and Prometheus text does not carry them.
    exemplars = env.get("OTEL_METRICS_EXEMPLAR_FILTER", "always_off")
    meter_provider = MeterProvider(
        metric_readers=readers,
        resource=resource,
        shutdown_on_exit=False,
        exemplar_filter=_exemplar_filter(exemplars),
    )

    exporters: list[SpanExporter] = []
    default_traces = "otlp" if _has_endpoint(env, "TRACES") else "none"
    traced = _names(env, "OTEL_TRACES_EXPORTER", default_traces)
    if "otlp" in traced:
        exporters.append(_otlp_spans(env))
    if "console" in traced:
        exporters.append(ConsoleSpanExporter())
    recording = bool(exporters) or span_exporter is not None
    # No exporter: unsampled spans still give every request a trace id, at almost no cost.
    tracer_provider = TracerProvider(
        resource=resource, sampler=None if recording else ALWAYS_OFF, shutdown_on_exit=False
    )
    for exporter in exporters:
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    if span_exporter is not None:  # tests: each span as it ends
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))

    meter = meter_provider.get_meter(SCOPE)
    tracer = tracer_provider.get_tracer(SCOPE)
    telemetry = Telemetry(
        tracer,
        meter,
        EventMetrics(meter),
        registry=registry,
        shutdowns=[tracer_provider.shutdown, meter_provider.shutdown],
        exporting={"metrics": sorted(chosen), "traces": sorted(traced)},
        recording=recording,
    )
    telemetry.subscribers.append(telemetry.metrics.observe)
    if recording:
        telemetry.subscribers.append(EventSpans(tracer).observe)
    telemetry._live()
    log.info(
        "telemetry: metrics to %s; traces to %s",
        ", ".join(sorted(chosen)) or "nowhere",
        ", ".join(sorted(traced)) or "nowhere (ids only)",
    )
    return telemetry
