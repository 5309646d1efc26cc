"""structlog set-up: JSON lines in production, readable console on a terminal."""

from __future__ import annotations

import logging
import sys

import structlog
from opentelemetry import trace
from structlog.types import EventDict, Processor


def configure_logging(*, json_logs: bool, level: str = "info") -> None:
    """Route structlog and the standard library (uvicorn, our use cases) through one renderer."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json_logs else _keep,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # faster-whisper logs each call at info; its warnings still come through.
    logging.getLogger("faster_whisper").setLevel(max(root.level, logging.WARNING))
    # Access lines come from our own middleware, with the request id and no query strings.
    logging.getLogger("uvicorn.access").disabled = True


def _keep(
    logger: object, name: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    return event


def add_trace_ids(logger: object, name: str, event: EventDict) -> EventDict:
    """Every line logged inside a request names its trace, to jump from a log to the trace."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event.setdefault("trace_id", trace.format_trace_id(span_context.trace_id))
        event.setdefault("span_id", trace.format_span_id(span_context.span_id))
    return event
