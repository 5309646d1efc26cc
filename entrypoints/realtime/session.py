"""A Realtime session's settings: `session.update` read as typed fields (GA shape, or the
beta's flat one), applied only when every field is valid, and written back as the session."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from domain.tools import Tool, ToolChoice, checked_choice, checked_tools
from domain.turn_taking import TurnDetection
from entrypoints.openai.shapes import OpenAIError

SessionType = Literal["realtime", "transcription"]
FORMATS = {"audio/pcm": "pcm_s16le", "audio/pcmu": "pcmu", "audio/pcma": "pcma"}
BETA_FORMATS = {"pcm16": "audio/pcm", "g711_ulaw": "audio/pcmu", "g711_alaw": "audio/pcma"}
PCM_RATE = 24_000
MAX_INSTRUCTIONS = 20_000
Modalities = Literal["audio", "text"]
Tokens = Annotated[int, Meta(ge=1, le=4096)] | Literal["inf"] | None


class Format(msgspec.Struct, frozen=True):
    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
    rate: Literal[24000] = 24000


class Transcription(msgspec.Struct, frozen=True):
    model: Annotated[str, Meta(max_length=200)] = "whisper-1"
    language: Annotated[str, Meta(pattern="^[A-Za-z]{2,3}$")] | None = None
    prompt: Annotated[str, Meta(max_length=1000)] | None = None


class TurnIn(msgspec.Struct, frozen=True):
    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: Annotated[float, Meta(ge=0.1, le=0.95)] = 0.5
    prefix_padding_ms: Annotated[int, Meta(ge=0, le=1000)] = 300
    silence_duration_ms: Annotated[int, Meta(ge=100, le=5000)] = 500
    create_response: bool = True
    interrupt_response: bool = True
    eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    idle_timeout_ms: int | None = None  # accepted, not supported

    def detection(self) -> TurnDetection:
        turn = TurnDetection(
            threshold=self.threshold,
            prefix_padding_ms=self.prefix_padding_ms,
            silence_duration_ms=self.silence_duration_ms,
            create_response=self.create_response,
            interrupt_response=self.interrupt_response,
        )
        return turn.semantic(self.eagerness) if self.type == "semantic_vad" else turn


class NoiseIn(msgspec.Struct, frozen=True):
    type: Literal["near_field", "far_field"]


class AudioIn(msgspec.Struct, frozen=True):
    format: Format | UnsetType = UNSET
    transcription: Transcription | UnsetType | None = UNSET
    turn_detection: TurnIn | UnsetType | None = UNSET
    noise_reduction: NoiseIn | UnsetType | None = UNSET  # null: off


class AudioOut(msgspec.Struct, frozen=True):
    format: Format | UnsetType = UNSET
    voice: Annotated[str, Meta(max_length=100)] | UnsetType = UNSET
    speed: Annotated[float, Meta(ge=0.25, le=1.5)] | UnsetType = UNSET


class Audio(msgspec.Struct, frozen=True):
    input: AudioIn = AudioIn()
    output: AudioOut = AudioOut()


class Update(msgspec.Struct, frozen=True):
    """A `session.update`'s fields; those not sent are UNSET and keep their value."""

    type: SessionType | UnsetType = UNSET
    instructions: Annotated[str, Meta(max_length=MAX_INSTRUCTIONS)] | UnsetType = UNSET
    output_modalities: list[Modalities] | UnsetType = UNSET
    max_output_tokens: Tokens | UnsetType = UNSET
    model: Annotated[str, Meta(max_length=200)] | UnsetType = UNSET
    tools: list[Tool] | UnsetType = UNSET
    tool_choice: ToolChoice | UnsetType = UNSET
    audio: Audio = Audio()


class BetaUpdate(msgspec.Struct, frozen=True):
    """The beta's flat session fields."""

    type: SessionType | UnsetType = UNSET
    instructions: Annotated[str, Meta(max_length=MAX_INSTRUCTIONS)] | UnsetType = UNSET
    modalities: list[Modalities] | UnsetType = UNSET
    max_response_output_tokens: Tokens | UnsetType = UNSET
    model: Annotated[str, Meta(max_length=200)] | UnsetType = UNSET
    tools: list[Tool] | UnsetType = UNSET
    tool_choice: ToolChoice | UnsetType = UNSET
    input_audio_format: Literal["pcm16", "g711_ulaw", "g711_alaw"] | UnsetType = UNSET
    output_audio_format: Literal["pcm16", "g711_ulaw", "g711_alaw"] | UnsetType = UNSET
    input_audio_transcription: Transcription | UnsetType | None = UNSET
    turn_detection: TurnIn | UnsetType | None = UNSET
    input_audio_noise_reduction: NoiseIn | UnsetType | None = UNSET
    voice: Annotated[str, Meta(max_length=100)] | UnsetType = UNSET
    speed: Annotated[float, Meta(ge=0.25, le=1.5)] | UnsetType = UNSET

    def as_ga(self) -> Update:
        def form(name: str | UnsetType) -> Format | UnsetType:
            return UNSET if isinstance(name, UnsetType) else Format(BETA_FORMATS[name])  # type: ignore[arg-type]

        modes = self.modalities
        audio_in = AudioIn(form(self.input_audio_format), self.input_audio_transcription,
                           self.turn_detection, self.input_audio_noise_reduction)  # fmt: skip
        audio_out = AudioOut(form(self.output_audio_format), self.voice, self.speed)
        if not isinstance(modes, UnsetType):
            modes = ["audio"] if "audio" in modes else ["text"]
        return Update(
            type=self.type,
            instructions=self.instructions,
            output_modalities=modes,
            max_output_tokens=self.max_response_output_tokens,
            model=self.model,
            tools=self.tools,
            tool_choice=self.tool_choice,
            audio=Audio(audio_in, audio_out),
        )


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
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = "auto"
    noise_reduction: str | None = None  # near_field, far_field, off; None: NOISE_REDUCTION

    @property
    def input_encoding(self) -> str:
        return FORMATS[self.input_format]

    @property
    def output_encoding(self) -> str:
        return FORMATS[self.output_format]

    @staticmethod
    def rate_of(audio_format: str) -> int:
        return PCM_RATE if audio_format == "audio/pcm" else 8_000


def new_session(session_id: str, session_type: SessionType, model: str | None) -> SessionConfig:
    if session_type == "transcription":
        return SessionConfig(session_id, "transcription", "", transcription=Transcription())
    return SessionConfig(id=session_id, model=model or "gpt-realtime")


def read(session: dict[str, Any], *, beta: bool) -> Update:
    try:
        if beta:
            return msgspec.convert(session, BetaUpdate).as_ga()
        return msgspec.convert(session, Update)
    except msgspec.ValidationError as error:
        message, _, where = str(error).partition(" - at `$")
        param = "session" + where.rstrip("`")
        raise OpenAIError(f"{param}: {message}", param=param, code="invalid_value") from None


def updated(config: SessionConfig, update: Update) -> SessionConfig:
    """`config` with the sent fields applied (the update was read whole, so all or none)."""
    if not isinstance(update.type, UnsetType) and update.type != config.type:
        raise OpenAIError(f"this is a {config.type} session; its type cannot change",
                          param="session.type", code="invalid_value")  # fmt: skip
    tools = config.tools
    if not isinstance(update.tools, UnsetType):
        tools = checked_tools(update.tools, "session.tools")
    choice = config.tool_choice if isinstance(update.tool_choice, UnsetType) else update.tool_choice
    audio_in, audio_out = update.audio.input, update.audio.output
    changes = {
        "instructions": update.instructions,
        "max_output_tokens": tokens(update.max_output_tokens),
        "model": update.model,
        "input_format": _format(audio_in.format),
        "transcription": audio_in.transcription,
        "output_format": _format(audio_out.format),
        "voice": audio_out.voice,
        "speed": audio_out.speed,
    }
    if not isinstance(update.output_modalities, UnsetType):
        if update.output_modalities not in (["audio"], ["text"]):
            raise OpenAIError('output_modalities must be ["audio"] or ["text"]',
                              param="session.output_modalities", code="invalid_value")  # fmt: skip
        changes["output_modalities"] = tuple(update.output_modalities)
    if not isinstance(audio_in.noise_reduction, UnsetType):
        noise = audio_in.noise_reduction
        changes["noise_reduction"] = "off" if noise is None else noise.type
    if not isinstance(audio_in.turn_detection, UnsetType):
        turn = audio_in.turn_detection
        changes["turn_detection"] = turn.detection() if turn is not None else None
    if isinstance(audio_in.transcription, Transcription) and audio_in.transcription.language:
        language = audio_in.transcription.language.lower()
        changes["transcription"] = msgspec.structs.replace(
            audio_in.transcription, language=language
        )
    changes["tools"] = tools
    changes["tool_choice"] = checked_choice(choice, tools, "session.tool_choice")
    kept = {k: v for k, v in changes.items() if not isinstance(v, UnsetType)}
    return msgspec.structs.replace(config, **kept)


def tokens(value: int | str | UnsetType | None) -> Any:
    return value if isinstance(value, UnsetType | int) else None


def _format(value: Format | UnsetType) -> str | UnsetType:
    return value if isinstance(value, UnsetType) else value.type
