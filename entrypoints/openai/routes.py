"""OpenAI-compatible routes under /v1: the same use cases as the v1 API, OpenAI's wire shapes.

Errors use OpenAI's body ({"error": {"message", "type", "param", "code"}}) so the official
client raises its usual exceptions.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, Router, get

from entrypoints.bootstrap import Container
from entrypoints.errors import OPENAI_EXCEPTION_HANDLERS
from entrypoints.openai.speech import speech
from entrypoints.openai.transcriptions import transcriptions, translations


@get("/models")
async def models(request: Request[Any, Any, Any]) -> dict[str, Any]:
    container: Container = request.app.state.container
    created = int(time.time() - (time.monotonic() - container.started_at))
    ids = container.catalog.model_names()
    ids += [s.provider for s in container.speech.providers.synthesizers]
    ids += ["tts-1", "tts-1-hd", "whisper-1"]  # OpenAI's names, served by the models above
    return {
        "object": "list",
        "data": [
            {"id": i, "object": "model", "created": created, "owned_by": "voicepipe"} for i in ids
        ],
    }


openai_router = Router(
    path="/v1",
    route_handlers=[speech, transcriptions, translations, models],
    # Named one by one: the app's handlers for these classes would otherwise win.
    exception_handlers=OPENAI_EXCEPTION_HANDLERS,  # type: ignore[arg-type]
)
