"""Flux's query, read with Deepgram's query helpers: the model, the audio, the turn
thresholds (domain/turn_taking.py) and keyterms."""

from __future__ import annotations

import msgspec

from domain.speech import SampleRate
from domain.turn_taking import FLUX_RANGES, TurnThresholds
from entrypoints.deepgram import query as dg
from entrypoints.deepgram.options import RAW_ENCODINGS, prompt_of

MODELS = {"flux-general-en": "en", "flux-general-multi": None}  # None: the language detected


class Asked(msgspec.Struct, frozen=True):
    language: str | None
    encoding: str | None  # the session's raw encoding, or ogg; None: a container, by its bytes
    sample_rate: int
    prompt: str | None
    thresholds: TurnThresholds


def asked(query: dg.Query) -> Asked:
    dg.refuse_unsupported(query)
    model = (query.get("model") or "").strip()
    if model not in MODELS:
        raise dg.InvalidParameter("model", "model must be flux-general-en or flux-general-multi")
    dg.flag(query, "numerals")  # checked; the model writes digits anyway
    rate = dg.integer(query, "sample_rate", SampleRate.LOWEST, SampleRate.HIGHEST)
    encoding = (query.get("encoding") or "").strip().lower()
    if encoding in RAW_ENCODINGS and rate is None:
        raise dg.InvalidParameter("sample_rate", f"sample_rate is required with {encoding}")
    if encoding and encoding not in (*RAW_ENCODINGS, "opus", "ogg-opus"):
        raise dg.UnsupportedFeature("encoding", "encoding must be linear16, mulaw, alaw or opus")
    return Asked(
        language=MODELS[model],
        encoding=RAW_ENCODINGS.get(encoding, "ogg" if encoding else None),
        sample_rate=rate or 16_000,
        prompt=prompt_of(query),
        thresholds=TurnThresholds().updated(**{n: _number(query, n) for n in FLUX_RANGES}),
    )


def _number(query: dg.Query, name: str) -> float | None:
    value = query.get(name)
    try:
        return None if value in (None, "") else float(str(value))
    except ValueError:
        raise dg.InvalidParameter(name, f"{name} must be a number") from None
