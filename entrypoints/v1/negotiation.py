"""Content negotiation for POST /api/tts: the JSON answer or the audio bytes, from `Accept`."""

from __future__ import annotations

import enum

from domain.errors import VoicePipeError

JSON = "application/json"
# Media types a client may name for each output format; the first is the one answered.
AUDIO_TYPES = {
    "wav": ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"),
    "mp3": ("audio/mpeg", "audio/mp3"),
    "opus": ("audio/ogg", "audio/opus"),
    "flac": ("audio/flac", "audio/x-flac"),
    "aac": ("audio/aac", "audio/x-aac"),
    "pcm": ("audio/l16", "audio/pcm"),
}


class Answer(enum.Enum):
    JSON = "json"
    AUDIO = "audio"


class NotAcceptable(VoicePipeError):
    """The client's `Accept` allows neither the JSON answer nor the requested audio."""

    code = "not_acceptable"
    status = 406


def _ranges(accept: str) -> list[tuple[str, float]]:
    """Media ranges of an Accept header, lower-cased, with their q-values."""
    ranges = []
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(1.0, max(0.0, float(value)))
                except ValueError:
                    q = 0.0  # an unreadable weight accepts nothing rather than everything
        ranges.append((media.lower(), q))
    return ranges


def _weight(ranges: list[tuple[str, float]], names: tuple[str, ...]) -> tuple[float, int]:
    """q-value and specificity (2 exact, 1 type/*, 0 */*) of the most specific matching range."""
    best: tuple[int, float] | None = None
    for media, q in ranges:
        kind, _, _ = media.partition("/")
        if media in names:
            specificity = 2
        elif media == f"{kind}/*" and any(name.startswith(f"{kind}/") for name in names):
            specificity = 1
        elif media == "*/*":
            specificity = 0
        else:
            continue
        if best is None or specificity > best[0]:
            best = (specificity, q)
    return (0.0, -1) if best is None else (best[1], best[0])


def choose_answer(accept: str | None, audio_format: str) -> Answer:
    """JSON unless the client prefers the audio of `audio_format`; NotAcceptable if neither.

    No Accept, or one that rates both equally, gets the JSON answer (what v1 always sent);
    between equal weights the more specific range wins, so `audio/*, */*` gets audio.
    """
    if accept is None or not accept.strip():
        return Answer.JSON
    audio_names = AUDIO_TYPES.get(audio_format.lower())
    if audio_names is None:
        return Answer.JSON  # an unknown `format` gets its own (JSON) error from the use case
    ranges = _ranges(accept)
    json_q, json_specificity = _weight(ranges, (JSON,))
    audio_q, audio_specificity = _weight(ranges, audio_names)
    if json_q == 0 and audio_q == 0:
        raise NotAcceptable(
            f"cannot answer `Accept: {accept[:200]}`; this request can have {JSON} or "
            f"{audio_names[0]} "
            "(set `format` to get another audio type)"
        )
    if (audio_q, audio_specificity) > (json_q, json_specificity):
        return Answer.AUDIO
    return Answer.JSON
