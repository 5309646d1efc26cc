"""Read what an in-memory OpenTelemetry reader and exporter collected, for the tests."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan


def points(reader: InMemoryMetricReader, name: str, **labels: str) -> list[Any]:
    data = reader.get_metrics_data()
    found: list[Any] = []
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    attributes = dict(point.attributes or {})
                    if all(attributes.get(k) == v for k, v in labels.items()):
                        found.append(point)
    return found


def total(reader: InMemoryMetricReader, name: str, **labels: str) -> float:
    """Counter value, gauge value or histogram count, summed over matching series."""
    found = 0.0
    for point in points(reader, name, **labels):
        found += point.count if hasattr(point, "count") else point.value
    return found


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def named(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    matching = [s for s in spans if s.name == name]
    assert len(matching) == 1, f"{name}: {[s.name for s in spans]}"
    return matching[0]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def duration_ns(span: ReadableSpan) -> int:
    assert span.start_time is not None and span.end_time is not None
    return span.end_time - span.start_time
