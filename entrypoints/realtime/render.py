"""A conversation's events as the Realtime API's server events."""

from __future__ import annotations

import base64
from typing import Any

from application.conversation_events import (
    ConversationEvent,
    ConversationFailed,
    InputCommitted,
    ItemAdded,
    ItemDeleted,
    ItemDone,
    ItemTruncated,
    ReplyAudio,
    ReplyDone,
    ReplyStarted,
    ReplyText,
    SpeechBegan,
    SpeechEnded,
    TranscriptCompleted,
    TranscriptDelta,
    TranscriptFailed,
)
from entrypoints.realtime.shapes import error_body, item_shape

Events = list[dict[str, Any]]


def rendered(event: ConversationEvent, beta: bool) -> Events:
    if isinstance(event, ReplyStarted | ReplyText | ReplyAudio | ReplyDone):
        return _reply(event, beta)
    if isinstance(event, SpeechBegan):
        return [{"type": "input_audio_buffer.speech_started", "audio_start_ms": event.audio_ms,
                 "item_id": event.item_id}]  # fmt: skip
    if isinstance(event, SpeechEnded):
        return [{"type": "input_audio_buffer.speech_stopped", "audio_end_ms": event.audio_ms,
                 "item_id": event.item_id}]  # fmt: skip
    if isinstance(event, InputCommitted):
        return [{"type": "input_audio_buffer.committed", "item_id": event.item_id,
                 "previous_item_id": event.previous_item_id}]  # fmt: skip
    if isinstance(event, ItemAdded | ItemDone):
        kind = "added" if isinstance(event, ItemAdded) else "done"
        return [{"type": f"conversation.item.{kind}", "previous_item_id": event.previous_item_id,
                 "item": item_shape(event.item, beta=beta)}]  # fmt: skip
    if isinstance(event, ItemDeleted):
        return [{"type": "conversation.item.deleted", "item_id": event.item_id}]
    if isinstance(event, ItemTruncated):
        return [{"type": "conversation.item.truncated", "item_id": event.item_id,
                 "content_index": 0, "audio_end_ms": event.audio_end_ms}]  # fmt: skip
    transcription = "conversation.item.input_audio_transcription"
    if isinstance(event, TranscriptDelta):
        return [{"type": f"{transcription}.delta", "item_id": event.item_id, "content_index": 0,
                 "delta": event.delta}]  # fmt: skip
    if isinstance(event, TranscriptCompleted):
        usage = {"type": "duration", "seconds": event.seconds}
        return [{"type": f"{transcription}.completed", "item_id": event.item_id,
                 "content_index": 0, "transcript": event.transcript, "usage": usage,
                 "language": event.language}]  # fmt: skip
    if isinstance(event, TranscriptFailed):
        error = {"type": "transcription_error", "code": event.code, "message": event.message}
        return [{"type": f"{transcription}.failed", "item_id": event.item_id,
                 "content_index": 0, "error": error}]  # fmt: skip
    assert isinstance(event, ConversationFailed)
    return [{"type": "error", "error": error_body(event.error)}]


def _reply(event: ReplyStarted | ReplyText | ReplyAudio | ReplyDone, beta: bool) -> Events:
    if isinstance(event, ReplyText | ReplyAudio):
        where = {"response_id": event.response_id, "item_id": event.item_id, "output_index": 0,
                 "content_index": 0}  # fmt: skip
        if isinstance(event, ReplyAudio):
            delta = base64.b64encode(event.data).decode()
            return [{"type": "response.output_audio.delta", **where, "delta": delta}]
        kind = "output_audio_transcript" if event.spoken else "output_text"
        return [{"type": f"response.{kind}.delta", **where, "delta": event.delta}]
    item = event.item
    shape = {"id": event.response_id, "object": "realtime.response", **event.tag}
    where = {"response_id": event.response_id, "output_index": 0}
    part_at = {**where, "item_id": item.id, "content_index": 0}
    done = item_shape(item, beta=beta)
    in_conversation = event.in_conversation
    added = {"previous_item_id": event.previous_item_id, "item": done}
    if isinstance(event, ReplyStarted):
        response = {**shape, "status": "in_progress", "status_details": None, "output": [],
                    "usage": None}  # fmt: skip
        events: Events = [
            {"type": "response.created", "response": response},
            {"type": "response.output_item.added", **where, "item": done},
        ]
        if in_conversation:
            events.append({"type": "conversation.item.added", **added})
        part = done["content"][0]
        return [*events, {"type": "response.content_part.added", **part_at, "part": part}]
    kind = "response.output_audio_transcript" if item.audio else "response.output_text"
    if item.audio:
        events = [
            {"type": "response.output_audio.done", **part_at},
            {"type": f"{kind}.done", **part_at, "transcript": item.text},
        ]
    else:
        events = [{"type": f"{kind}.done", **part_at, "text": item.text}]
    events += [
        {"type": "response.content_part.done", **part_at, "part": done["content"][0]},
        {"type": "response.output_item.done", **where, "item": done},
    ]
    if in_conversation:
        events.append({"type": "conversation.item.done", **added})
    usage = {
        "total_tokens": (event.input_chars + event.output_chars) // 4,
        "input_tokens": event.input_chars // 4,
        "output_tokens": event.output_chars // 4,
    }  # characters / 4: the chat model's tokens are its own
    response = {**shape, "status": event.status, "status_details": _details(event),
                "output": [done], "usage": usage}  # fmt: skip
    return [*events, {"type": "response.done", "response": response}]


def _details(event: ReplyDone) -> dict[str, Any] | None:
    if event.status == "completed":
        return None
    details: dict[str, Any] = {"type": event.status, "reason": event.reason}
    if event.code is not None:
        kind = "rate_limit_error" if event.code == "rate_limited" else "server_error"
        details["error"] = {"type": kind, "code": event.code, "message": event.message}
    return details
