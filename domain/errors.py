"""Errors the pipeline raises on purpose; each has a stable machine-readable code."""

from __future__ import annotations


class VoicePipeError(Exception):
    """Base error: `code` is stable and documented, `message` is safe to show a user."""

    code = "error"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(VoicePipeError):
    """The request has the wrong shape or a field of the wrong type; `param` names it."""

    code = "invalid_request"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class InvalidValue(InvalidRequest):
    """A field of the right type with a value that is not allowed (OpenAI's `invalid_value`)."""

    code = "invalid_value"


class EmptyText(VoicePipeError):
    code = "empty_text"


class TextTooLong(VoicePipeError):
    code = "text_too_long"
    status = 413


class UnsupportedFormat(VoicePipeError):
    code = "unsupported_format"


class UnknownVoice(VoicePipeError):
    code = "unknown_voice"


class InvalidAudio(VoicePipeError):
    """The bytes are not audio we can decode (not audio at all, or truncated)."""

    code = "invalid_audio"


class AudioTooLarge(VoicePipeError):
    code = "audio_too_large"
    status = 413


class AudioTooLong(VoicePipeError):
    code = "audio_too_long"
    status = 413


class StepFailed(VoicePipeError):
    """A dependency failed while doing its step; the service itself is fine."""

    code = "step_failed"
    status = 503

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step
        self.code = f"{step}_failed"


class UnsupportedLanguage(VoicePipeError):
    code = "unsupported_language"


class ProviderError(VoicePipeError):
    """A speech provider failed. `transient` failures (network, 5xx, 429) are worth a retry."""

    status = 503

    def __init__(
        self, code: str, message: str, *, transient: bool, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.transient = transient
        self.retry_after = retry_after


class Busy(VoicePipeError):
    """Model work is queued to its bound; try again shortly."""

    code = "busy"
    status = 503


class LanguageModelMissing(VoicePipeError):
    """A conversation needs a chat model and none is configured."""

    code = "llm_not_configured"
    status = 503


class LanguageModelFailed(VoicePipeError):
    """The chat-completions server failed or could not be reached."""

    code = "llm_failed"
    status = 502
