"""AudioConverter on PyAV: a client's streamed audio to 16 kHz mono PCM as it arrives.

PCM is resampled frame by frame (adapters/pyav_resampling.py); a container (Ogg/Opus,
WebM/Opus) is decoded incrementally by a worker per stream (adapters/pyav_container_stream.py).
"""

from __future__ import annotations

from adapters import g711
from adapters.pyav_container_stream import CONTAINERS, ContainerStream
from adapters.pyav_resampling import RATE, OutputStream, PcmStream, Resampler
from domain.errors import InvalidRequest, UnsupportedFormat


class PyAVAudioConverter:
    """Opens one AudioStream per client (PCM or container) and resamples whole clips."""

    def __init__(
        self,
        *,
        max_pending_bytes: int = 1 << 20,
        max_held_seconds: float = 120.0,
        wait_seconds: float = 5.0,
        max_channels: int = 8,
        max_rate: int = 192_000,
    ) -> None:
        self._max_pending = max_pending_bytes
        self._max_held = int(max_held_seconds * RATE) * 2
        self._wait = wait_seconds
        self._shape = (max_channels, max_rate)

    def open_stream(self, encoding: str, sample_rate: int) -> PcmStream | ContainerStream:
        if encoding == "pcm_s16le":
            if not 8_000 <= sample_rate <= 48_000:
                raise InvalidRequest("sample_rate must be between 8000 and 48000")
            return PcmStream(sample_rate)
        if encoding in g711.LAWS:
            return PcmStream(g711.RATE, encoding)
        if encoding not in CONTAINERS:
            raise UnsupportedFormat(f"cannot stream {encoding}: pcm_s16le, pcmu, pcma, ogg or webm")
        return ContainerStream(encoding, self._max_pending, self._max_held, self._wait, self._shape)

    def resample(self, pcm: bytes, from_rate: int, to_rate: int) -> bytes:
        resampler = Resampler(from_rate, to_rate)
        return resampler.convert(pcm) + resampler.flush()

    def open_output(self, encoding: str, from_rate: int, to_rate: int) -> OutputStream:
        if encoding in g711.LAWS and to_rate != g711.RATE:
            raise InvalidRequest("G.711 audio is 8000 Hz")
        if encoding != "pcm_s16le" and encoding not in g711.LAWS:
            raise UnsupportedFormat(f"cannot send {encoding}: pcm_s16le, pcmu or pcma")
        return OutputStream(encoding, from_rate, to_rate)
