"""Settings: environment variables read once into a typed object."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from entrypoints.redis_settings import RedisSettingsError, redis_target

T = TypeVar("T")

MB = 1024 * 1024
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every knob of the service. Names match the environment variables, lower-cased."""

    host: str = "127.0.0.1"
    port: int = 8000
    redis_url: str | None = None
    redis_prefix: str = "voicepipe"
    redis_timeout_seconds: float = 0.5
    redis_sentinels: tuple[str, ...] = ()  # host:port of each sentinel; see redis_settings
    redis_sentinel_master: str = "mymaster"
    redis_sentinel_password: str | None = None
    event_buffer_max: int = 100_000
    event_log: str = "auto"
    tts_providers: tuple[str, ...] = ("piper",)
    elevenlabs_api_key: str | None = None
    elevenlabs_base_url: str | None = None
    elevenlabs_voice_id: str = "JBFqnCBsd6RMkjVDRZzb"
    elevenlabs_model_id: str = "eleven_flash_v2_5"
    elevenlabs_voices: tuple[str, ...] = ()
    elevenlabs_output_format: str = "mp3_44100_128"
    elevenlabs_timeout_seconds: float = 10.0
    elevenlabs_attempts: int = 3
    elevenlabs_max_seconds: float = 20.0
    breaker_failures: int = 5
    breaker_cooldown_seconds: float = 60.0
    breaker_successes: int = 2
    piper_voice: str | None = None
    piper_voices: tuple[str, ...] = ()  # more voices beside it: .onnx files or directories
    whisper_model: str | None = None
    whisper_device: str = "cpu"
    whisper_compute_type: str = "int8"
    whisper_threads: int = 0
    whisper_beam_size: int = 5
    whisper_models: tuple[str, ...] = ()
    whisper_max_loaded: int = 2
    stt_queue_max: int = 16
    model_cache_dir: str = "~/.cache/voicepipe"
    model_idle_seconds: float = 300.0
    tts_queue_max: int = 64
    stt_partial_ms: int = 500
    stt_endpoint_ms: int = 500
    stt_stream_beam_size: int = 5
    stt_turn_detection: str = "semantic"
    stt_incomplete_ms: int = 700
    stt_early_ms: int = 128
    stt_draft_window_s: float = 10.0
    stt_final_window_s: float = 15.0
    noise_reduction: str = "off"
    cache_ttl_seconds: float = 3600.0
    cache_max_bytes: int = 256 * MB
    max_text_chars: int = 5000
    max_audio_bytes: int = 25 * MB
    max_audio_seconds: float = 1800.0
    event_retention: int = 1_000_000
    api_keys: tuple[str, ...] = ()
    public_stats: bool = False
    public_metrics: bool = False
    token_ttl_seconds: int = 60
    rate_limit_per_minute: int = 600
    tts_chars_per_day: int = 1_000_000
    stt_seconds_per_day: int = 36_000
    connections_per_key: int = 10
    llm_chars_per_day: int = 1_000_000
    anonymous_limits: str = "auto"
    ws_max_connections: int = 1000
    ws_allowed_origins: tuple[str, ...] = ()
    ws_idle_seconds: float = 300.0
    ws_ping_seconds: float = 20.0
    max_audio_channels: int = 8
    max_sample_rate: int = 192_000
    retain_content: bool = False
    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: str | None = None
    llm_timeout_seconds: float = 30.0
    llm_answer_seconds: float = 120.0
    conversation_max_items: int = 200
    conversation_max_chars: int = 200_000
    wyoming_uri: str | None = None
    wyoming_zeroconf: str | None = None
    # Scale-out (issue 18): readiness mark of the model queues, shared breakers' sync period.
    ready_queue_fraction: float = 0.75
    breaker_sync_seconds: float = 0.5
    event_confirm_seconds: float = 0.25
    log_format: str = "auto"
    log_level: str = "info"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in msgspec.structs.fields(cls):
            raw = env.get(field.name.upper())
            if raw is None or raw.strip() == "":
                continue
            values[field.name] = _parse(field.name.upper(), raw.strip(), field.type)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        positive = ("max_text_chars", "max_audio_bytes", "cache_max_bytes", "event_retention")
        others: tuple[str, ...] = ("event_buffer_max", "redis_timeout_seconds")
        others += ("breaker_failures", "breaker_successes", "elevenlabs_attempts")
        others += ("elevenlabs_timeout_seconds", "stt_queue_max", "stt_partial_ms")
        others += ("stt_endpoint_ms", "stt_stream_beam_size", "tts_queue_max")
        others += ("token_ttl_seconds", "ws_max_connections", "ws_idle_seconds")
        others += ("ws_ping_seconds", "max_audio_channels", "max_sample_rate")
        others += ("whisper_max_loaded", "stt_incomplete_ms", "stt_early_ms")
        others += ("llm_answer_seconds", "conversation_max_items", "conversation_max_chars")
        for name in (
            "rate_limit_per_minute",
            "tts_chars_per_day",
            "stt_seconds_per_day",
            "connections_per_key",
            "llm_chars_per_day",
        ):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name.upper()} must be 0 (no limit) or more")
        for name in (*positive, *others, "elevenlabs_max_seconds"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name.upper()} must be positive")
        if not 0 < self.port < 65536:
            raise SettingsError("PORT must be between 1 and 65535")
        try:
            redis_target(self)
        except RedisSettingsError as error:
            raise SettingsError(str(error)) from None
        if self.wyoming_uri is not None and not self.wyoming_uri.startswith(("tcp://", "unix://")):
            raise SettingsError("WYOMING_URI must be tcp://HOST:PORT (or unix://PATH)")
        if self.llm_base_url is not None and not self.llm_base_url.startswith(
            ("http://", "https://")
        ):
            raise SettingsError("LLM_BASE_URL must start with http:// or https://")
        if not self.elevenlabs_output_format.startswith(("mp3_", "pcm_")):
            raise SettingsError("ELEVENLABS_OUTPUT_FORMAT must be an mp3_* or pcm_* format")
        for pair in self.elevenlabs_voices:
            if "=" not in pair:
                raise SettingsError("ELEVENLABS_VOICES is a list of name=voice_id pairs")
        self.whisper_directories()
        if self.event_log not in ("auto", "memory", "redis"):
            raise SettingsError("EVENT_LOG must be auto, memory or redis")
        if self.event_log == "redis" and not self.redis_enabled:
            raise SettingsError("EVENT_LOG=redis needs REDIS_URL or REDIS_SENTINELS")
        for name in ("stt_draft_window_s", "stt_final_window_s"):
            if not 1 <= getattr(self, name) <= 30:
                raise SettingsError(f"{name.upper()} must be between 1 and 30 (seconds)")
        if self.stt_turn_detection not in ("semantic", "silence"):
            raise SettingsError("STT_TURN_DETECTION must be semantic or silence")
        if self.noise_reduction not in ("off", "near_field", "far_field"):
            raise SettingsError("NOISE_REDUCTION must be off, near_field or far_field")
        if self.anonymous_limits not in ("auto", "on", "off"):
            raise SettingsError("ANONYMOUS_LIMITS must be auto, on or off")
        if self.log_format not in ("auto", "json", "console"):
            raise SettingsError("LOG_FORMAT must be auto, json or console")
        unknown = set(self.tts_providers) - {"piper", "elevenlabs"}
        if unknown or not self.tts_providers:
            raise SettingsError("TTS_PROVIDERS lists providers among: piper, elevenlabs")
        if not 0 < self.ready_queue_fraction <= 1:
            raise SettingsError("READY_QUEUE_FRACTION must be more than 0 and at most 1")
        if self.breaker_sync_seconds <= 0:
            raise SettingsError("BREAKER_SYNC_SECONDS must be positive")
        if self.event_confirm_seconds < 0:
            raise SettingsError("EVENT_CONFIRM_SECONDS must be 0 (do not wait) or more")

    def whisper_directories(self) -> dict[str, str]:
        """WHISPER_MODELS as name -> model directory; each directory must hold a model."""
        found: dict[str, str] = {}
        for pair in self.whisper_models:
            name, _, directory = (part.strip() for part in pair.partition("="))
            if not _MODEL_NAME.fullmatch(name) or not directory:
                raise SettingsError(
                    f"WHISPER_MODELS: {pair!r} is not name=/model/directory (a name is letters, "
                    "digits, '.', '_' or '-')"
                )
            if name in found or name == "whisper-1":
                raise SettingsError(f"WHISPER_MODELS: the name {name!r} is already taken")
            path = Path(directory).expanduser()
            if not path.is_dir():
                raise SettingsError(f"WHISPER_MODELS: {name}={directory}: no such directory")
            if not (path / "model.bin").is_file():
                raise SettingsError(
                    f"WHISPER_MODELS: {name}={directory} is not a faster-whisper model "
                    "directory (no model.bin there)"
                )
            found[name] = str(path)
        return found

    @property
    def redis_enabled(self) -> bool:
        return self.redis_url is not None or bool(self.redis_sentinels)

    @property
    def json_logs(self) -> bool:
        if self.log_format == "auto":
            return not sys.stderr.isatty()
        return self.log_format == "json"


def _parse(name: str, raw: str, annotation: Any) -> Any:
    parsers: dict[Any, Callable[[str], Any]] = {
        bool: _boolean,
        int: int,
        float: float,
        str: str,
        str | None: str,
        tuple[str, ...]: lambda v: tuple(p.strip() for p in v.split(",") if p.strip()),
    }
    try:
        return parsers[annotation](raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a valid value") from None


def _boolean(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)
