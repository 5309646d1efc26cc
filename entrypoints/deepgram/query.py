"""Deepgram's query string: its parameters read as text, flags and numbers, each refusal
naming the parameter; features the service does not have are refused by name, never
silently dropped."""

from __future__ import annotations

from collections.abc import Iterable

from domain.errors import VoicePipeError

# Boolean features that need what the service does not have (speaker models, text analysis).
_REFUSED_FLAGS = {
    "diarize": "speaker diarization",
    "multichannel": "transcribing channels separately (channels are mixed down)",
    "paragraphs": "paragraphs",
    "topics": "topic detection",
    "intents": "intent recognition",
    "sentiment": "sentiment analysis per segment",
    "detect_entities": "entity detection",
    "detect_topics": "topic detection",
    "profanity_filter": "the profanity filter",
    "filler_words": "filler words (the model leaves them out)",
    "dictation": "dictation commands",
    "measurements": "measurement formatting",
}
# Parameters refused whatever their value.
_REFUSED_VALUES = {
    "callback": "callbacks (this service calls no one back: wait for the response)",
    "diarize_model": "speaker diarization",
    "redact": "redaction",
    "summarize": "summaries",
    "search": "search",
    "replace": "find and replace",
    "custom_topic": "topic detection",
    "custom_intent": "intent recognition",
}


class Query:
    """The query string's parameters, each name with its values in order."""

    def __init__(self, pairs: Iterable[tuple[str, object]]) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(str(name), []).append(str(value))

    def get(self, name: str) -> str | None:
        values = self._values.get(name)
        return values[0] if values else None

    def getall(self, name: str) -> list[str]:
        return list(self._values.get(name, ()))


class InvalidParameter(VoicePipeError):
    """A query parameter with a value the API does not take."""

    code = "invalid_query_parameter"

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class UnsupportedFeature(VoicePipeError):
    """A Deepgram feature this service does not offer."""

    code = "unsupported_feature"

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def flag(query: Query, name: str, default: bool = False) -> bool:
    value = query.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise InvalidParameter(name, f"{name} must be true or false")
    return lowered == "true"


def integer(query: Query, name: str, low: int, high: int) -> int | None:
    """An integer, also as SDKs typed for floats send it (24000.0)."""
    value = number(query, name)
    if value is None:
        return None
    if not (value.is_integer() and low <= value <= high):  # NaN fails too
        raise InvalidParameter(name, f"{name} must be an integer from {low} to {high}")
    return int(value)


def number(query: Query, name: str) -> float | None:
    value = query.get(name)
    try:
        return None if value is None or value == "" else float(value.strip())
    except ValueError:
        raise InvalidParameter(name, f"{name} must be a number") from None


def refuse_unsupported(query: Query) -> None:
    for name, feature in _REFUSED_FLAGS.items():
        if flag(query, name):
            raise UnsupportedFeature(name, f"{name}: {feature} is not supported")
    for name, feature in _REFUSED_VALUES.items():
        values = [v for v in query.getall(name) if v not in ("", "false")]
        if values:
            raise UnsupportedFeature(name, f"{name}: {feature} is not supported")
