"""Wire shapes of the Realtime API: the session object, items, errors, and the beta's names
for GA events."""

from __future__ import annotations

from typing import Any

import msgspec

from domain.conversation import Item
from domain.turn_taking import TurnDetection
from entrypoints.errors import problem_of
from entrypoints.realtime.session import BETA_FORMATS, PCM_RATE, SessionConfig

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


def item_shape(item: Item, *, beta: bool = False) -> dict[str, Any]:
    shape = {"id": item.id, "object": "realtime.item", "type": item.type, "status": item.status}
    if item.type == "function_call":
        return shape | {"call_id": item.call_id, "name": item.name, "arguments": item.text}
    if item.type == "function_call_output":
        return shape | {"call_id": item.call_id, "output": item.text}
    if item.role == "assistant":
        kind = "audio" if beta else "output_audio"
        part: dict[str, Any] = (
            {"type": kind, "transcript": item.text}
            if item.audio
            else {"type": "text" if beta else "output_text", "text": item.text}
        )
    elif item.audio:
        transcript = item.text if item.status == "completed" else None
        part = {"type": "input_audio", "transcript": transcript}
    else:
        part = {"type": "input_text", "text": item.text}
    return shape | {"role": item.role, "content": [part]}


def error_body(error: BaseException, event_id: str | None = None) -> dict[str, Any]:
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


def turn_shape(turn: TurnDetection | None) -> dict[str, Any] | None:
    if turn is None:
        return None
    shape: dict[str, Any] = {
        "type": turn.type,
        "create_response": turn.create_response,
        "interrupt_response": turn.interrupt_response,
    }
    if turn.type == "semantic_vad":
        return shape | {"eagerness": turn.eagerness or "auto"}
    return shape | {
        "threshold": turn.threshold,
        "prefix_padding_ms": turn.prefix_padding_ms,
        "silence_duration_ms": turn.silence_duration_ms,
        "idle_timeout_ms": None,
    }


def session_shape(config: SessionConfig, *, beta: bool, expires_at: int) -> dict[str, Any]:
    """The session object of `session.created` / `session.updated`."""
    transcription = msgspec.to_builtins(config.transcription) if config.transcription else None
    turn = turn_shape(config.turn_detection)
    if beta:
        return _beta_shape(config, transcription, turn, expires_at)
    audio_in = {
        "format": _format(config.input_format),
        "transcription": transcription,
        "noise_reduction": noise_shape(config),
        "turn_detection": turn,
    }
    if config.type == "transcription":
        return {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": config.id,
            "expires_at": expires_at,
            "audio": {"input": audio_in},
            "include": None,
        }
    output = {"format": _format(config.output_format), "voice": config.voice, "speed": config.speed}
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": config.id,
        "model": config.model,
        "expires_at": expires_at,
        "output_modalities": list(config.output_modalities),
        "instructions": config.instructions,
        "audio": {"input": audio_in, "output": output},
        **tools_shape(config),
        "max_output_tokens": config.max_output_tokens or "inf",
        "tracing": None,
        "prompt": None,
        "truncation": "disabled",
    }


def noise_shape(config: SessionConfig) -> dict[str, str] | None:
    noise = config.noise_reduction
    return {"type": noise} if noise in ("near_field", "far_field") else None


def tools_shape(config: SessionConfig) -> dict[str, Any]:
    return {"tools": msgspec.to_builtins(config.tools),
            "tool_choice": msgspec.to_builtins(config.tool_choice)}  # fmt: skip


def _format(audio_format: str) -> dict[str, Any]:
    if audio_format == "audio/pcm":
        return {"type": audio_format, "rate": PCM_RATE}
    return {"type": audio_format}


def _beta_shape(
    config: SessionConfig, transcription: Any, turn: dict[str, Any] | None, expires_at: int
) -> dict[str, Any]:
    names = {v: k for k, v in BETA_FORMATS.items()}
    realtime = config.type == "realtime"
    shape: dict[str, Any] = {
        "id": config.id,
        "object": "realtime.session" if realtime else "realtime.transcription_session",
        "expires_at": expires_at,
        "input_audio_format": names[config.input_format],
        "input_audio_transcription": transcription,
        "input_audio_noise_reduction": noise_shape(config),
        "turn_detection": turn,
    }
    if not realtime:
        return shape | {"modalities": ["text"]}
    return shape | {
        "model": config.model,
        "modalities": ["audio", "text"] if "audio" in config.output_modalities else ["text"],
        "instructions": config.instructions,
        "voice": config.voice,
        "speed": config.speed,
        "output_audio_format": names[config.output_format],
        **tools_shape(config),
        "max_response_output_tokens": config.max_output_tokens or "inf",
    }
