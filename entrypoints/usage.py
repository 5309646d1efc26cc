"""GET /v1/usage: what the calling key has used of its limits, and what is left.

The numbers are read from the counters the limits are enforced on (never charged), so they
agree with what the next request meets. Under /v1, errors are in OpenAI's shape.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from application.access import Usage
from entrypoints.bootstrap import Container
from entrypoints.errors import OPENAI_EXCEPTION_HANDLERS
from entrypoints.security import principal_of


@get("/v1/usage", exception_handlers=OPENAI_EXCEPTION_HANDLERS)  # type: ignore[arg-type]
async def usage(request: Request[Any, Any, Any]) -> Usage:
    """Today's TTS characters, STT seconds and chat-model characters, the requests of the
    last 60 s and the open connections of the key, each with its limit (null: none)."""
    container: Container = request.app.state.container
    return await container.admission.usage(principal_of(request))
