"""Records the events of one pipeline run and appends them in one batch."""

from __future__ import annotations

import logging
from typing import Any

from application.ports import Clock, EventLog
from domain.events import DomainEvent, Pipeline, RequestCompleted, RequestFailed

log = logging.getLogger(__name__)


class PipelineRun:
    """Collects one request's events; `flush` pays one append for all of them."""

    def __init__(self, pipeline: Pipeline, pipeline_id: str, clock: Clock) -> None:
        self.pipeline: Pipeline = pipeline
        self.pipeline_id = pipeline_id
        self.clock = clock
        self.started = clock.monotonic()
        self.events: list[DomainEvent] = []

    def record(self, event_type: type[DomainEvent], **fields: Any) -> None:
        self.events.append(
            event_type(pipeline_id=self.pipeline_id, occurred_at=self.clock.now(), **fields)
        )

    def since_ms(self, start: float) -> float:
        return round(1000.0 * (self.clock.monotonic() - start), 3)

    def elapsed_ms(self) -> float:
        return self.since_ms(self.started)

    def completed(self, cached: bool = False) -> float:
        latency = self.elapsed_ms()
        self.record(RequestCompleted, pipeline=self.pipeline, latency_ms=latency, cached=cached)
        return latency

    def failed(self, step: str, code: str) -> None:
        self.record(
            RequestFailed,
            pipeline=self.pipeline,
            step=step,
            code=code,
            latency_ms=self.elapsed_ms(),
        )

    async def flush(self, event_log: EventLog) -> None:
        # The log adapters buffer and count their own failures; a request never fails here.
        try:
            await event_log.append(self.events)
        except Exception:
            log.exception("event log append failed")
