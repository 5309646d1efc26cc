"""A stream's audio, kept only from where a start or a final may still reach back to."""

from __future__ import annotations

from domain.speech import AudioClip

RATE = 16_000


class StreamAudio:
    """16 kHz mono s16le PCM addressed by byte position in the stream."""

    def __init__(self) -> None:
        self._pcm = bytearray()  # from `_offset` bytes into the stream
        self._offset = 0

    def __len__(self) -> int:
        """Bytes held."""
        return len(self._pcm)

    def append(self, pcm: bytes) -> None:
        self._pcm += pcm

    def clip(self, start: int, end: int) -> AudioClip:
        return AudioClip(bytes(self._pcm[start - self._offset : end - self._offset]), RATE)

    def forget_before(self, position: int) -> None:
        if position > self._offset:
            del self._pcm[: position - self._offset]
            self._offset = position
