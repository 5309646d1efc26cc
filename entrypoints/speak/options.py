"""Deepgram Speak's query: the voice a model names, the audio's encoding, rate and container;
each refusal names the parameter (the query reading is Deepgram's, shared)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import msgspec

from domain.speech import AudioFormat, Speed, Voice
from entrypoints.deepgram.query import InvalidParameter, Query, UnsupportedFeature, integer, number
from entrypoints.deepgram.query import refuse_unsupported as refuse_listen_only

RAW = {"linear16": "pcm_s16le", "mulaw": "pcmu", "alaw": "pcma"}  # REST and WebSocket
RATES = {"linear16": (8_000, 16_000, 24_000, 32_000, 48_000), "mulaw": (8_000,), "alaw": (8_000,)}
RAW_TYPES = {"pcm_s16le": "audio/l16", "pcmu": "audio/basic", "pcma": "audio/x-alaw-basic"}
# REST only, at the voice's rate, by the service's encoder: (format, container, content type).
ENCODED = {
    "mp3": (AudioFormat.MP3, "none", "audio/mpeg"),
    "opus": (AudioFormat.OPUS, "ogg", "audio/ogg"),
    "flac": (AudioFormat.FLAC, "none", "audio/flac"),
    "aac": (AudioFormat.AAC, "none", "audio/aac"),
}
# Taken where Deepgram takes them, in its ranges; the service's encoder keeps its own.
BIT_RATES = {"mp3": (32_000, 48_000), "opus": (4_000, 650_000), "aac": (4_000, 192_000)}


class SpeakOptions(msgspec.Struct, frozen=True):
    model: str  # as asked: what Metadata and dg-model-name say
    voice: str | None  # the service's voice; None: the first provider's default
    encoding: str  # Deepgram's name
    sample_rate: int  # of raw audio (0: encoded, at the voice's own rate)
    container: str  # wav, ogg or none
    speed: float


def voice_of(
    model: str, voices: dict[str, list[str]], languages: Mapping[str, str] | None = None
) -> str | None:
    """A configured voice's name is that voice; an Aura model is the voice its character
    names (aura-2-thalia-en: thalia) where one is configured, else for a language other than
    English (aura-2-celeste-es) the first voice of that language (`languages`: voice ->
    locale), else the default voice."""
    names = {name for listed in voices.values() for name in listed}
    if model in names:
        return model
    if not model.startswith("aura-") or model.count("-") < 2:
        known = ", ".join(sorted(names))
        raise InvalidParameter("model", f"unknown model {model!r}: use aura-* or one of {known}")
    character, language = model.split("-")[-2:]
    language = language.lower()
    if character in names:
        return character
    speakers = [v for v, spoken in (languages or {}).items() if spoken.split("_")[0] == language]
    return speakers[0] if speakers and language != "en" else None


def model_facts(voice: Voice) -> dict[str, str]:
    """Metadata's model fields: the version is provider/voice, the uuid stable for it."""
    version = f"{voice.provider}/{voice.name}"
    return {"model_version": version, "model_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, version))}


def read(
    query: Query,
    voices: dict[str, list[str]],
    *,
    rest: bool,
    languages: Mapping[str, str] | None = None,
) -> SpeakOptions:
    refuse_listen_only(query)  # callback and the like
    model = query.get("model") or "aura-asteria-en"  # Deepgram's default
    encoding = (query.get("encoding") or "linear16").lower()
    if encoding in ENCODED and not rest:
        raise UnsupportedFeature(
            "encoding", f"encoding {encoding} is REST only; use linear16, mulaw, alaw"
        )
    if encoding not in RAW and encoding not in ENCODED:
        known = ", ".join([*RAW, *(ENCODED if rest else ())])
        raise InvalidParameter("encoding", f"encoding {encoding!r} is not one of: {known}")
    rates = RATES.get(encoding, ())
    rate = integer(query, "sample_rate", 1, 10**6)
    if rate is not None and rate not in rates:
        allowed = ", ".join(map(str, rates)) or "the voice's own: leave it out"
        raise InvalidParameter("sample_rate", f"sample_rate for {encoding} is {allowed}")
    default = ("wav" if rest else "none") if rates else ENCODED[encoding][1]
    container = (query.get("container") or default).lower()
    if container != default and not (rest and rates and container == "none"):
        raise InvalidParameter("container", f"the container for {encoding} is {default}")
    if query.get("bit_rate") and not (rest and encoding in BIT_RATES):
        raise InvalidParameter("bit_rate", f"bit_rate is not taken with {encoding} here")
    integer(query, "bit_rate", *BIT_RATES.get(encoding, (0, 0)))
    speed = Speed.parse(number(query, "speed") or 1.0)
    rate = rate or (24_000 if encoding == "linear16" else 8_000 if rates else 0)
    voice = voice_of(model, voices, languages)
    return SpeakOptions(model, voice, encoding, rate, container, speed)
