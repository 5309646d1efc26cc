"""A conversation's events as the Realtime API's server events."""

from __future__ import annotations

import base64
from typing import Any

from application.conversation_events import (
    AnswerDropped,
    CallArguments,
    ConversationEvent,
    ConversationFailed,
    InputCommitted,
    ItemAdded,
    ItemDeleted,
    ItemDone,
    ItemTruncated,
    OutputAdded,
    OutputDone,
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
Reply = ReplyStarted | OutputAdded | ReplyText | ReplyAudio | CallArguments | OutputDone | ReplyDone


def rendered(event: ConversationEvent, beta: bool) -> Events:
    if isinstance(event, Reply):
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
    if isinstance(event, AnswerDropped):  # this server's own event, for clients that ask
        return [{"type": "voicepipe.speculation.dropped", "transcript": event.said}]
    assert isinstance(event, ConversationFailed)
    return [{"type": "error", "error": error_body(event.error)}]


def _reply(event: Reply, beta: bool) -> Events:
    rid = event.response_id
    if isinstance(event, ReplyStarted):
        response = {"id": rid, "object": "realtime.response", **event.tag, "output": [],
                    "status": "in_progress", "status_details": None, "usage": None}  # fmt: skip
        return [{"type": "response.created", "response": response}]
    if isinstance(event, ReplyDone):
        usage = {
            "total_tokens": (event.input_chars + event.output_chars) // 4,
            "input_tokens": event.input_chars // 4,
            "output_tokens": event.output_chars // 4,
        }  # characters / 4: the chat model's tokens are its own
        output = [item_shape(item, beta=beta) for item in event.outputs]
        response = {
            "id": rid,
            "object": "realtime.response",
            **event.tag,
            "output": output,
            "status": event.status,
            "status_details": _details(event),
            "usage": usage,
        }
        return [{"type": "response.done", "response": response}]
    where: dict[str, Any] = {"response_id": rid, "output_index": event.output_index}
    if isinstance(event, ReplyText | ReplyAudio):
        part_at = {**where, "item_id": event.item_id, "content_index": 0}
        if isinstance(event, ReplyAudio):
            delta = base64.b64encode(event.data).decode()
            return [{"type": "response.output_audio.delta", **part_at, "delta": delta}]
        kind = "output_audio_transcript" if event.spoken else "output_text"
        return [{"type": f"response.{kind}.delta", **part_at, "delta": event.delta}]
    item = event.item
    if isinstance(event, CallArguments):
        return [{"type": "response.function_call_arguments.delta", **where, "item_id": item.id,
                 "call_id": item.call_id, "delta": event.delta}]  # fmt: skip
    shape = item_shape(item, beta=beta)
    added: dict[str, Any] = {"previous_item_id": event.previous_item_id, "item": shape}
    stage = "added" if isinstance(event, OutputAdded) else "done"
    told: Events = (
        [{"type": f"conversation.item.{stage}", **added}] if event.in_conversation else []
    )
    part_at = {**where, "item_id": item.id, "content_index": 0}
    if isinstance(event, OutputAdded):
        events: Events = [{"type": "response.output_item.added", **where, "item": shape}, *told]
        if item.type == "message":
            events.append({"type": "response.content_part.added", **part_at,
                           "part": shape["content"][0]})  # fmt: skip
        return events
    if item.type == "function_call":
        events = [{"type": "response.function_call_arguments.done", **where, "item_id": item.id,
                   "call_id": item.call_id, "name": item.name, "arguments": item.text}]  # fmt: skip
    elif item.audio:
        kind = "response.output_audio_transcript"
        events = [{"type": "response.output_audio.done", **part_at},
                  {"type": f"{kind}.done", **part_at, "transcript": item.text}]  # fmt: skip
    else:
        events = [{"type": "response.output_text.done", **part_at, "text": item.text}]
    if item.type == "message":
        part = shape["content"][0]
        events.append({"type": "response.content_part.done", **part_at, "part": part})
    return [*events, {"type": "response.output_item.done", **where, "item": shape}, *told]


def _details(event: ReplyDone) -> dict[str, Any] | None:
    if event.status == "completed":
        return None
    details: dict[str, Any] = {"type": event.status, "reason": event.reason}
    if event.code is not None:
        kind = "rate_limit_error" if event.code == "rate_limited" else "server_error"
        details["error"] = {"type": kind, "code": event.code, "message": event.message}
    return details
