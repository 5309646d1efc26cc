"""G.711 μ-law and A-law (ITU-T G.711), the telephony codecs: 8-bit samples at 8 kHz.

Decoding is a 256-entry table; encoding a 65,536-entry table over every s16 value, both built
once with numpy from the standard segment rules, so a frame converts in one vector lookup.
"""

from __future__ import annotations

import numpy as np

_BIAS = 0x84


def _ulaw_decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(codes & 0x80, -magnitude, magnitude).astype("<i2")


def _alaw_decode_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return np.where(codes & 0x80, magnitude, -magnitude).astype("<i2")


def _segment(magnitude: np.ndarray, first: int) -> np.ndarray:
    """The exponent (0-7): how many of `first`, 2x`first`, ... 64x`first` the magnitude reaches."""
    exponent = np.zeros(magnitude.shape, dtype=np.int32)
    for step in range(7):
        exponent += magnitude >= (first << step)
    return exponent


def _ulaw_encode_table() -> np.ndarray:
    samples = np.arange(-32_768, 32_768, dtype=np.int32) >> 2  # 14-bit, as G.711 specifies
    mask = np.where(samples < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(samples), 8_159) + (_BIAS >> 2)
    exponent = _segment(magnitude, 0x40)
    mantissa = (magnitude >> (exponent + 1)) & 0x0F
    code = np.where(magnitude > 0x1FFF, 0x7F, (exponent << 4) | mantissa)  # clipped: the top code
    return (code ^ mask).astype(np.uint8)


def _alaw_encode_table() -> np.ndarray:
    samples = np.arange(-32_768, 32_768, dtype=np.int32)
    sign = np.where(samples >= 0, 0x80, 0)
    magnitude = np.minimum(np.where(samples < 0, -samples - 1, samples), 32_767) >> 3
    exponent = _segment(magnitude, 0x20)
    shift = np.maximum(exponent, 1)
    mantissa = np.where(exponent == 0, magnitude >> 1, magnitude >> shift) & 0x0F
    table: np.ndarray = ((sign | (exponent << 4) | mantissa) ^ 0x55).astype(np.uint8)
    return table


_DECODE = {"pcmu": _ulaw_decode_table(), "pcma": _alaw_decode_table()}
_ENCODE = {"pcmu": _ulaw_encode_table(), "pcma": _alaw_encode_table()}
LAWS = tuple(_DECODE)
RATE = 8_000


def decode(law: str, data: bytes) -> bytes:
    """G.711 bytes to s16le PCM at 8 kHz (twice as many bytes)."""
    return _DECODE[law][np.frombuffer(data, dtype=np.uint8)].tobytes()


def encode(law: str, pcm: bytes) -> bytes:
    """s16le PCM at 8 kHz to G.711 bytes; an odd trailing byte is the caller's to carry."""
    samples = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2).astype(np.int32)
    return _ENCODE[law][samples + 32_768].tobytes()
