"""G.711 against the reference codec (CPython's audioop, C code following ITU-T G.711)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from adapters import g711

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

EVERY_SAMPLE = np.arange(-32_768, 32_768, dtype="<i2").tobytes()
EVERY_CODE = bytes(range(256))


@pytest.mark.parametrize(
    ("law", "encode", "decode"),
    [("pcmu", audioop.lin2ulaw, audioop.ulaw2lin), ("pcma", audioop.lin2alaw, audioop.alaw2lin)],
)
def test_every_sample_and_code_matches_the_reference(
    law: str, encode: object, decode: object
) -> None:
    assert g711.encode(law, EVERY_SAMPLE) == encode(EVERY_SAMPLE, 2)  # type: ignore[operator]
    assert g711.decode(law, EVERY_CODE) == decode(EVERY_CODE, 2)  # type: ignore[operator]


@pytest.mark.parametrize("law", ["pcmu", "pcma"])
def test_a_round_trip_keeps_speech_within_the_codecs_step(law: str) -> None:
    t = np.arange(8000) / 8000
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    back = np.frombuffer(g711.decode(law, g711.encode(law, tone.tobytes())), dtype="<i2")
    error = np.abs(back.astype(int) - tone.astype(int))
    assert len(back) == len(tone) and error.max() <= 256 and error.mean() < 64
