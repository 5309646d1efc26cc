"""PCM resampling on PyAV (FFmpeg's swresample): a windowed-sinc polyphase filter whose state
carries across frames, so a stream resampled frame by frame equals the whole clip resampled.
Output lags input by a constant 1-2 ms, which flush() returns."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import numpy as np
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler

from adapters import g711

RATE = 16_000
_INLINE_BYTES = 16 * 1024  # PCM frames up to this resample on the loop (~0.1 ms, < a thread hop)


def frames_pcm(frames: Iterable[AudioFrame]) -> bytes:
    return b"".join(bytes(frame.to_ndarray()) for frame in frames)


class Resampler:
    """Mono s16le from one rate to another, carrying filter state and odd bytes across calls."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self._from = from_rate
        self._odd = b""
        self._av: AudioResampler | None = None
        if from_rate != to_rate:
            self._av = AudioResampler(format="s16", layout="mono", rate=to_rate)

    def convert(self, data: bytes) -> bytes:
        if self._odd:
            data = self._odd + data
        whole = len(data) - len(data) % 2
        self._odd = data[whole:]
        if self._av is None or not whole:
            return data[:whole]
        samples = np.frombuffer(data, dtype="<i2", count=whole // 2).reshape(1, -1)
        frame = AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self._from
        return frames_pcm(self._av.resample(frame))

    def flush(self) -> bytes:
        self._odd = b""
        return b"" if self._av is None else frames_pcm(self._av.resample(None))


class PcmStream:
    """Raw s16le at the client's rate (or G.711 at 8 kHz), resampled to 16 kHz frame by frame."""

    def __init__(self, sample_rate: int, law: str | None = None) -> None:
        self._resampler = Resampler(sample_rate, RATE)
        self._law = law
        self._open = True

    async def feed(self, data: bytes) -> bytes:
        if not self._open:
            return b""
        if self._law is not None:
            data = g711.decode(self._law, data)
        if len(data) <= _INLINE_BYTES:
            return self._resampler.convert(data)
        return await asyncio.to_thread(self._resampler.convert, data)

    async def finish(self) -> bytes:
        if not self._open:
            return b""
        self._open = False
        return self._resampler.flush()

    def close(self) -> None:
        self._open = False


class OutputStream:
    """Mono s16le from the voice's rate to a client's format: s16le at another rate, or G.711."""

    def __init__(self, encoding: str, from_rate: int, to_rate: int) -> None:
        self._resampler = Resampler(from_rate, to_rate)
        self._law = encoding if encoding in g711.LAWS else None

    def convert(self, pcm: bytes) -> bytes:
        return self._encoded(self._resampler.convert(pcm))

    def flush(self) -> bytes:
        return self._encoded(self._resampler.flush())

    def _encoded(self, pcm: bytes) -> bytes:
        return pcm if self._law is None else g711.encode(self._law, pcm)
