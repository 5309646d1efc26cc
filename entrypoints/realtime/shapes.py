"""Wire shapes of the Realtime API: items, errors, and the beta's names for GA events."""

from __future__ import annotations

from typing import Any

from domain.conversation import Item
from entrypoints.errors import problem_of

# GA event type -> the beta's name; None: the beta has no such event.
BETA_NAMES: dict[str, str | None] = {
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "conversation.item.added": "conversation.item.created",
    "conversation.item.done": None,
}
# Client events the beta names differently.
BETA_CLIENT_NAMES = {"transcription_session.update": "session.update"}


def item_shape(item: Item, *, beta: bool = False, transcript: str | None = None) -> dict[str, Any]:
    if item.role == "assistant":
        kind = "audio" if beta else "output_audio"
        part: dict[str, Any] = (
            {"type": kind, "transcript": item.text}
            if item.audio
            else {"type": "text" if beta else "output_text", "text": item.text}
        )
    elif item.audio:
        part = {"type": "input_audio", "transcript": transcript}
    else:
        part = {"type": "input_text", "text": item.text}
    return {
        "id": item.id,
        "object": "realtime.item",
        "type": "message",
        "role": item.role,
        "status": item.status,
        "content": [part],
    }


def error_body(error: Exception, event_id: str | None = None) -> dict[str, Any]:
    """The `error` field of an `error` event: OpenAI's type/code/message/param."""
    problem = problem_of(error)
    kind = "invalid_request_error" if problem.status < 500 else "server_error"
    if problem.status == 429:
        kind = "rate_limit_error"
    return {
        "type": kind,
        "code": problem.code,
        "message": problem.message,
        "param": problem.param,
        "event_id": event_id,
    }
