"""A Realtime API session's configuration: read from `session.update` (GA shape, or the beta's
flat one), checked field by field, and written back as the session object."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from domain.utterances import Endpointing
from entrypoints.openai.shapes import OpenAIError

SessionType = Literal["realtime", "transcription"]
# GA format types, and the beta's names for them.
FORMATS = {"audio/pcm": "pcm_s16le", "audio/pcmu": "pcmu", "audio/pcma": "pcma"}
BETA_FORMATS = {"pcm16": "audio/pcm", "g711_ulaw": "audio/pcmu", "g711_alaw": "audio/pcma"}
PCM_RATE = 24_000
MAX_INSTRUCTIONS = 20_000
MAX_PROMPT = 1_000
EAGERNESS_SILENCE_MS = {"low": 1000, "medium": 500, "auto": 500, "high": 300}
# semantic_vad: how sure the turn model must be that a sentence is finished to end the turn at
# the pause, and how long an unfinished one waits; the silence above applies without the model.
EAGERNESS_TURN = {
    "low": (0.7, 2000),
    "medium": (0.5, 1000),
    "auto": (0.5, 1000),
    "high": (0.3, 600),
}


def invalid(message: str, param: str) -> OpenAIError:
    return OpenAIError(message, param=param, code="invalid_value")


class TurnDetection(msgspec.Struct, frozen=True):
    type: str = "server_vad"
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True
    eagerness: str | None = None  # semantic_vad: mapped to a silence duration

    def endpointing(self) -> Endpointing:
        semantic = self.type == "semantic_vad"
        complete, incomplete = EAGERNESS_TURN[self.eagerness or "auto"]
        return Endpointing(
            start_threshold=self.threshold,
            end_threshold=max(0.05, self.threshold - 0.15),
            endpoint_ms=self.silence_duration_ms,
            preroll_ms=self.prefix_padding_ms,
            semantic=semantic,
            complete_threshold=complete,
            incomplete_ms=incomplete,
        )

    def render(self) -> dict[str, Any]:
        shape: dict[str, Any] = {
            "type": self.type,
            "create_response": self.create_response,
            "interrupt_response": self.interrupt_response,
        }
        if self.type == "semantic_vad":
            return shape | {"eagerness": self.eagerness or "auto"}
        return shape | {
            "threshold": self.threshold,
            "prefix_padding_ms": self.prefix_padding_ms,
            "silence_duration_ms": self.silence_duration_ms,
            "idle_timeout_ms": None,
        }


class Transcription(msgspec.Struct, frozen=True):
    model: str = "whisper-1"
    language: str | None = None
    prompt: str | None = None


class SessionConfig(msgspec.Struct, frozen=True):
    id: str
    type: SessionType = "realtime"
    model: str = "gpt-realtime"
    instructions: str = ""
    output_modalities: tuple[str, ...] = ("audio",)
    input_format: str = "audio/pcm"
    output_format: str = "audio/pcm"
    voice: str = "alloy"
    speed: float = 1.0
    transcription: Transcription | None = None
    turn_detection: TurnDetection | None = TurnDetection()
    max_output_tokens: int | None = None

    @property
    def input_encoding(self) -> str:
        return FORMATS[self.input_format]

    @property
    def output_encoding(self) -> str:
        return FORMATS[self.output_format]

    @staticmethod
    def rate_of(audio_format: str) -> int:
        return PCM_RATE if audio_format == "audio/pcm" else 8_000

    def listening_key(self) -> tuple[Any, ...]:
        """What the listening session depends on: a change reopens it."""
        return (self.input_format, self.transcription, self.turn_detection)


def new_session(session_id: str, session_type: SessionType, model: str | None) -> SessionConfig:
    if session_type == "transcription":
        return SessionConfig(
            id=session_id, type="transcription", model="", transcription=Transcription()
        )
    return SessionConfig(id=session_id, model=model or "gpt-realtime")


def updated(config: SessionConfig, session: Any, *, beta: bool) -> SessionConfig:
    """`config` with the fields of a `session.update` applied; raises OpenAIError on the first
    bad one, leaving the session as it was."""
    if not isinstance(session, dict):
        raise invalid("session must be an object", "session")
    if beta:
        session = _from_beta(session, config.type)
    kind = session.get("type", config.type)
    if kind != config.type:
        raise invalid(f"this is a {config.type} session; its type cannot change", "session.type")
    changes: dict[str, Any] = {}
    if "instructions" in session:
        changes["instructions"] = _text(session["instructions"], "instructions", MAX_INSTRUCTIONS)
    if "output_modalities" in session:
        changes["output_modalities"] = _modalities(session["output_modalities"])
    if "max_output_tokens" in session:
        changes["max_output_tokens"] = max_tokens(session["max_output_tokens"])
    if "model" in session and isinstance(session["model"], str):
        changes["model"] = session["model"][:200]
    if session.get("tools"):
        raise OpenAIError(
            "tools (function calling) are not supported by this server",
            param="session.tools",
            code="unsupported_feature",
        )
    audio = _object(session.get("audio", {}), "session.audio")
    inbound = _object(audio.get("input", {}), "session.audio.input")
    outbound = _object(audio.get("output", {}), "session.audio.output")
    if "format" in inbound:
        changes["input_format"] = _format(inbound["format"], "session.audio.input.format")
    if "transcription" in inbound:
        changes["transcription"] = _transcription(inbound["transcription"])
    if "turn_detection" in inbound:
        changes["turn_detection"] = _turn_detection(inbound["turn_detection"])
    if "format" in outbound:
        changes["output_format"] = _format(outbound["format"], "session.audio.output.format")
    if "voice" in outbound:
        changes["voice"] = _text(outbound["voice"], "session.audio.output.voice", 100)
    if "speed" in outbound:
        changes["speed"] = _speed(outbound["speed"], "session.audio.output.speed")
    return msgspec.structs.replace(config, **changes)


def _from_beta(session: dict[str, Any], kind: str) -> dict[str, Any]:
    """The beta's flat session fields, in the GA's places."""
    ga = {k: v for k, v in session.items() if k in ("instructions", "model", "tools", "type")}
    if kind == "transcription":
        ga["type"] = "transcription"
    if "modalities" in session:
        modes = session["modalities"]
        ga["output_modalities"] = (
            ["audio"] if isinstance(modes, list) and "audio" in modes else modes
        )
    if "max_response_output_tokens" in session:
        ga["max_output_tokens"] = session["max_response_output_tokens"]
    inbound: dict[str, Any] = {}
    outbound: dict[str, Any] = {}
    for field, side in (("input_audio_format", inbound), ("output_audio_format", outbound)):
        if field in session:
            name = session[field]
            side["format"] = (
                {"type": BETA_FORMATS.get(name, name)} if isinstance(name, str) else name
            )
    if "input_audio_transcription" in session:
        inbound["transcription"] = session["input_audio_transcription"]
    if "turn_detection" in session:
        inbound["turn_detection"] = session["turn_detection"]
    for field in ("voice", "speed"):
        if field in session:
            outbound[field] = session[field]
    ga["audio"] = {"input": inbound, "output": outbound}
    return ga


def _object(value: Any, param: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"{param} must be an object", param)
    return value


def _text(value: Any, param: str, limit: int) -> str:
    if not isinstance(value, str):
        raise invalid(f"{param} must be a string", param)
    if len(value) > limit:
        raise invalid(f"{param} is limited to {limit} characters", param)
    return value


def _modalities(value: Any) -> tuple[str, ...]:
    if value not in (["audio"], ["text"]):
        raise invalid('output_modalities must be ["audio"] or ["text"]', "output_modalities")
    return tuple(value)


def max_tokens(value: Any) -> int | None:
    if value in ("inf", None):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
        raise invalid('max_output_tokens must be an integer from 1 to 4096, or "inf"',
                      "max_output_tokens")  # fmt: skip
    return value


def _speed(value: Any, param: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.25 <= value <= 1.5:
        raise invalid(f"{param} must be a number from 0.25 to 1.5", param)
    return float(value)


def _format(value: Any, param: str) -> str:
    value = _object(value, param)
    kind = value.get("type")
    if kind not in FORMATS:
        raise invalid(f"{param}.type must be one of: {', '.join(FORMATS)}", f"{param}.type")
    if kind == "audio/pcm" and value.get("rate", PCM_RATE) != PCM_RATE:
        raise invalid("audio/pcm is 24000 Hz", f"{param}.rate")
    return str(kind)


def _transcription(value: Any) -> Transcription | None:
    if value is None:
        return None
    value = _object(value, "session.audio.input.transcription")
    model = value.get("model", "whisper-1")
    language = value.get("language")
    prompt = value.get("prompt")
    if not isinstance(model, str) or len(model) > 200:
        raise invalid("transcription.model must be a model name", "transcription.model")
    if language is not None and (not isinstance(language, str) or not 2 <= len(language) <= 3):
        raise invalid("transcription.language must be an ISO-639-1 code, like en", "language")
    if prompt is not None:
        prompt = _text(prompt, "session.audio.input.transcription.prompt", MAX_PROMPT) or None
    return Transcription(model, language.lower() if language else None, prompt)


def _turn_detection(value: Any) -> TurnDetection | None:
    if value is None:
        return None
    value = _object(value, "session.audio.input.turn_detection")
    param = "session.audio.input.turn_detection"
    kind = value.get("type", "server_vad")
    if kind not in ("server_vad", "semantic_vad"):
        raise invalid(f"{param}.type must be server_vad or semantic_vad (or null)", f"{param}.type")
    flags = {}
    for flag in ("create_response", "interrupt_response"):
        if flag in value:
            if not isinstance(value[flag], bool):
                raise invalid(f"{param}.{flag} must be true or false", f"{param}.{flag}")
            flags[flag] = value[flag]
    if kind == "semantic_vad":
        eagerness = value.get("eagerness", "auto")
        if eagerness not in EAGERNESS_SILENCE_MS:
            raise invalid("eagerness must be low, medium, high or auto", f"{param}.eagerness")
        return TurnDetection(
            type=kind,
            silence_duration_ms=EAGERNESS_SILENCE_MS[eagerness],
            eagerness=eagerness,
            **flags,
        )
    threshold = value.get("threshold", 0.5)
    padding = value.get("prefix_padding_ms", 300)
    silence = value.get("silence_duration_ms", 500)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise invalid("threshold must be a number from 0.1 to 0.95", f"{param}.threshold")
    if not 0.1 <= threshold <= 0.95:
        raise invalid("threshold must be a number from 0.1 to 0.95", f"{param}.threshold")
    for name, number, low, high in (
        ("prefix_padding_ms", padding, 0, 1000),
        ("silence_duration_ms", silence, 100, 5000),
    ):
        if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
            raise invalid(f"{name} must be an integer from {low} to {high}", f"{param}.{name}")
    return TurnDetection(
        type=kind,
        threshold=float(threshold),
        prefix_padding_ms=padding,
        silence_duration_ms=silence,
        **flags,
    )


def render(config: SessionConfig, *, beta: bool, expires_at: int) -> dict[str, Any]:
    """The session object of `session.created` / `session.updated`."""
    transcription = (
        msgspec.to_builtins(config.transcription) if config.transcription is not None else None
    )
    turn = config.turn_detection.render() if config.turn_detection is not None else None
    input_format = _rendered_format(config.input_format)
    output_format = _rendered_format(config.output_format)
    if beta:
        return _render_beta(config, transcription, turn, expires_at)
    audio_in = {
        "format": input_format,
        "transcription": transcription,
        "noise_reduction": None,
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
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": config.id,
        "model": config.model,
        "expires_at": expires_at,
        "output_modalities": list(config.output_modalities),
        "instructions": config.instructions,
        "audio": {
            "input": audio_in,
            "output": {"format": output_format, "voice": config.voice, "speed": config.speed},
        },
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": config.max_output_tokens or "inf",
        "tracing": None,
        "prompt": None,
        "truncation": "disabled",
    }


def _rendered_format(audio_format: str) -> dict[str, Any]:
    if audio_format == "audio/pcm":
        return {"type": audio_format, "rate": PCM_RATE}
    return {"type": audio_format}


def _render_beta(
    config: SessionConfig,
    transcription: Any,
    turn: dict[str, Any] | None,
    expires_at: int,
) -> dict[str, Any]:
    names = {v: k for k, v in BETA_FORMATS.items()}
    shape: dict[str, Any] = {
        "id": config.id,
        "object": "realtime.session"
        if config.type == "realtime"
        else "realtime.transcription_session",
        "expires_at": expires_at,
        "input_audio_format": names[config.input_format],
        "input_audio_transcription": transcription,
        "turn_detection": turn,
    }
    if config.type == "transcription":
        return shape | {"modalities": ["text"]}
    return shape | {
        "model": config.model,
        "modalities": ["audio", "text"] if "audio" in config.output_modalities else ["text"],
        "instructions": config.instructions,
        "voice": config.voice,
        "speed": config.speed,
        "output_audio_format": names[config.output_format],
        "tools": [],
        "tool_choice": "auto",
        "max_response_output_tokens": config.max_output_tokens or "inf",
    }
