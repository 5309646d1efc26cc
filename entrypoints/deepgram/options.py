"""Deepgram's query parameters, read and checked: what a /v1/listen request asks of the
sessions. Features the service does not have are refused by name, never silently dropped."""

from __future__ import annotations

import re

import msgspec

from domain.speech import SampleRate
from entrypoints.deepgram.query import (
    InvalidParameter,
    Query,
    UnsupportedFeature,
    flag,
    integer,
    refuse_unsupported,
)

DEFAULT_UTT_SPLIT = 0.8  # seconds of silence between words that start a new utterance
ENDPOINT_BOUNDS = (100, 5000)  # ms; voice activity is judged in 32 ms windows
UTTERANCE_END_BOUNDS = (100, 60_000)
MAX_PROMPT_CHARS = 1000
# Deepgram's model families: any of them (e.g. nova-3, nova-2-phonecall, enhanced, whisper-
# large) is served by the default model. A configured name (GET /v1/models) wins.
_DEEPGRAM_MODEL = re.compile(
    r"^(nova|enhanced|base|whisper|general|meeting|phonecall|finance|conversationalai"
    r"|voicemail|video|medical|drivethru|automotive|custom)(-[a-z0-9.-]+)?$"
)
# Raw encodings Deepgram names, by the name the sessions know them.
RAW_ENCODINGS = {"linear16": "pcm_s16le", "mulaw": "pcmu", "alaw": "pcma"}
CONTAINER_ENCODINGS = ("opus", "ogg-opus", "flac")  # prerecorded: found in the bytes
UNSUPPORTED_ENCODINGS = ("linear32", "amr-nb", "amr-wb", "speex", "g729")


class Models(msgspec.Struct, frozen=True):
    default: str
    names: tuple[str, ...]


class Common(msgspec.Struct, frozen=True):
    model: str | None  # a configured name other than the default; None: the default model
    model_name: str  # the model that transcribes, as metadata names it
    language: str | None  # None: detected
    punctuate: bool
    prompt: str | None  # keyterms and keywords, as context for the model


class Prerecorded(msgspec.Struct, frozen=True):
    common: Common
    encoding: str | None  # raw samples (pcm_s16le, pcmu, pcma); None: a container
    sample_rate: int | None
    channels: int
    utterances: bool
    utt_split: float
    detect_language: bool


class Live(msgspec.Struct, frozen=True):
    common: Common
    encoding: str | None  # pcm_s16le, pcmu, pcma, ogg; None: Ogg or WebM, told by its bytes
    sample_rate: int
    interim_results: bool
    endpoint_ms: int | None  # None: endpointing=false, the client finalizes
    utterance_end_ms: int | None
    vad_events: bool


def model_of(query: Query, models: Models) -> tuple[str | None, str]:
    """(the configured model to ask for, or None for the default; its name)."""
    asked = (query.get("model") or "").strip()
    if not asked or asked == models.default:
        return None, models.default
    if asked in models.names:
        return asked, asked
    if asked == "whisper-1" or _DEEPGRAM_MODEL.match(asked.lower()):
        return None, models.default
    raise InvalidParameter(
        "model",
        f"unknown model; use one of {', '.join(models.names)}, or a Deepgram model name "
        f"(nova-3, nova-2, enhanced, base, ...: {models.default})",
    )


def language_of(query: Query) -> str | None:
    """A BCP-47 tag as Whisper's code (`en-US` is `en`); `multi` or none: detected."""
    value = (query.get("language") or "").strip()
    if not value or value.lower() == "multi":
        return None
    primary = re.split(r"[-_]", value, maxsplit=1)[0].lower()
    if not re.fullmatch(r"[a-z]{2,3}", primary):
        raise InvalidParameter("language", "language must be a BCP-47 tag such as en or en-US")
    return primary


def prompt_of(query: Query) -> str | None:
    """`keyterm` and `keywords` (intensifiers dropped) become the model's context."""
    terms = [t.strip() for t in query.getall("keyterm") if t.strip()]
    for keyword in query.getall("keywords"):
        term = keyword.rsplit(":", 1)[0] if re.search(r":-?\d+(\.\d+)?$", keyword) else keyword
        if term.strip():
            terms.append(term.strip())
    if not terms:
        return None
    prompt = ", ".join(dict.fromkeys(terms))
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidParameter(
            "keyterm", f"keyterm and keywords together are limited to {MAX_PROMPT_CHARS} characters"
        )
    return prompt


def common(query: Query, models: Models) -> Common:
    refuse_unsupported(query)
    model, model_name = model_of(query, models)
    punctuate = flag(query, "punctuate") or flag(query, "smart_format")
    flag(query, "numerals")  # checked, and what the model does anyway (digits)
    return Common(model, model_name, language_of(query), punctuate, prompt_of(query))


def channels_of(query: Query, high: int) -> int:
    channels = integer(query, "channels", 1, high)
    return 1 if channels is None else channels


def _encoding(query: Query) -> str | None:
    value = (query.get("encoding") or "").strip().lower()
    if not value:
        return None
    if value in UNSUPPORTED_ENCODINGS:
        raise UnsupportedFeature(
            "encoding", f"encoding {value} is not supported; use linear16, mulaw, alaw or opus"
        )
    if value not in RAW_ENCODINGS and value not in CONTAINER_ENCODINGS:
        raise InvalidParameter(
            "encoding", "encoding must be one of linear16, mulaw, alaw, opus, ogg-opus, flac"
        )
    return value


def prerecorded(query: Query, models: Models, max_channels: int = 8) -> Prerecorded:
    shared = common(query, models)
    detect = flag(query, "detect_language")
    if detect:
        shared = msgspec.structs.replace(shared, language=None)
    elif query.get("language") is None:
        shared = msgspec.structs.replace(shared, language="en")  # Deepgram's default
    encoding = _encoding(query)
    raw = RAW_ENCODINGS.get(encoding or "")
    rate = integer(query, "sample_rate", SampleRate.LOWEST, SampleRate.HIGHEST)
    if raw is not None and rate is None:
        raise InvalidParameter("sample_rate", f"sample_rate is required with encoding={encoding}")
    split = query.get("utt_split")
    try:
        utt_split = DEFAULT_UTT_SPLIT if split in (None, "") else float(str(split))
    except ValueError:
        utt_split = -1.0
    if not 0.0 < utt_split <= 60.0:  # also NaN
        raise InvalidParameter("utt_split", "utt_split must be a number of seconds, 0 to 60")
    return Prerecorded(
        common=shared,
        encoding=raw,
        sample_rate=rate,
        channels=channels_of(query, max_channels),
        utterances=flag(query, "utterances"),
        utt_split=utt_split,
        detect_language=detect,
    )


def live(query: Query, models: Models, endpoint_ms: int) -> Live:
    """`endpoint_ms`: the service's own silence to end an utterance, when none is asked."""
    shared = common(query, models)  # the model for the language: application/model_choice
    if flag(query, "detect_language"):
        shared = msgspec.structs.replace(shared, language=None)
    elif query.get("language") is None:
        shared = msgspec.structs.replace(shared, language="en")  # Deepgram's default
    if channels_of(query, 8) != 1:
        raise UnsupportedFeature("channels", "streams are mono: channels must be 1")
    encoding = _encoding(query)
    rate = integer(query, "sample_rate", SampleRate.LOWEST, SampleRate.HIGHEST)
    session_encoding: str | None
    if encoding == "linear16":
        if rate is None:
            raise InvalidParameter("sample_rate", "sample_rate is required with encoding=linear16")
        session_encoding = "pcm_s16le"
    elif encoding in ("mulaw", "alaw"):
        if rate not in (None, 8_000):
            raise InvalidParameter("sample_rate", f"sample_rate of {encoding} streams is 8000")
        session_encoding, rate = RAW_ENCODINGS[encoding], 8_000
    elif encoding in ("opus", "ogg-opus"):
        session_encoding = "ogg"  # Opus in an Ogg container, as a recorder writes it
    elif encoding == "flac":
        raise UnsupportedFeature(
            "encoding", "encoding flac is not supported for streams; use opus or linear16"
        )
    else:
        session_encoding = None
    return Live(
        common=shared,
        encoding=session_encoding,
        sample_rate=rate or 16_000,
        interim_results=flag(query, "interim_results"),
        endpoint_ms=_endpointing(query, endpoint_ms),
        utterance_end_ms=integer(query, "utterance_end_ms", *UTTERANCE_END_BOUNDS),
        vad_events=flag(query, "vad_events"),
    )


def _endpointing(query: Query, default_ms: int) -> int | None:
    value = (query.get("endpointing") or "").strip().lower()
    if value in ("", "true"):
        return default_ms
    if value == "false":
        return None
    try:
        ms = int(value)
    except ValueError:
        raise InvalidParameter(
            "endpointing", "endpointing must be a number of milliseconds, or false"
        ) from None
    if ms < 0:
        raise InvalidParameter("endpointing", "endpointing must not be negative")
    low, high = ENDPOINT_BOUNDS
    return min(max(ms, low), high)
