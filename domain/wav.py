"""WAV headers: for headerless samples sent as a recording, and for a stream of unknown
length."""

from __future__ import annotations

import struct

# Headerless audio a recording may be sent as: its WAVE format tag and bytes per sample.
WAVE_FORMATS = {"pcm_s16le": (1, 2), "pcmu": (7, 1), "pcma": (6, 1)}
RAW_ENCODINGS = tuple(WAVE_FORMATS)
WAVE_HEADER_BYTES = 44


def wave_header(encoding: str, sample_rate: int, channels: int, data_bytes: int) -> bytes:
    """The 44-byte RIFF/WAVE header that makes headerless samples a recording any decoder
    reads: PCM, or G.711 (mu-law, A-law) at any rate."""
    tag, width = WAVE_FORMATS[encoding]
    block = width * channels
    fmt = struct.pack("<HHIIHH", tag, channels, sample_rate, sample_rate * block, block, 8 * width)
    return b"".join(
        (
            b"RIFF",
            struct.pack("<I", 4 + 8 + len(fmt) + 8 + data_bytes),
            b"WAVEfmt ",
            struct.pack("<I", len(fmt)),
            fmt,
            b"data",
            struct.pack("<I", data_bytes),
        )
    )


def streaming_header(sample_rate: int) -> bytes:
    """A mono s16le WAV header with unknown length (0xFFFFFFFF), as recorders write while
    streaming."""
    size = 0xFFFFFFFF
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", size)
        + b"WAVEfmt "
        + fmt
        + b"data"
        + struct.pack("<I", size - 36)
    )
