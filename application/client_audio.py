"""A speech stream's audio in a client's raw encoding, item by item: what every protocol that
sends raw speech on a long-lived connection renders (PCM at the client's rate, or G.711)."""

from __future__ import annotations

import asyncio

from application.ports import AudioConverter, AudioOutput
from application.stream_speech import StreamChunk, StreamFinished, StreamItem, StreamStarted


class ClientAudio:
    """One stream's items as `encoding` (`pcm_s16le`, `pcmu`, `pcma`) at `rate`."""

    def __init__(self, converter: AudioConverter, encoding: str, rate: int) -> None:
        self.converter = converter
        self.encoding = encoding
        self.rate = rate
        self._output: AudioOutput | None = None

    async def convert(self, item: StreamItem) -> bytes:
        """The bytes `item` adds: none at the start, each chunk converted (off the event loop:
        a piece is seconds of audio), the converter's rest at the end unless cancelled."""
        if isinstance(item, StreamStarted):
            self._output = self.converter.open_output(self.encoding, item.sample_rate, self.rate)
        elif self._output is not None and isinstance(item, StreamChunk):
            return await asyncio.to_thread(self._output.convert, item.pcm)
        elif self._output is not None and isinstance(item, StreamFinished) and not item.cancelled:
            return self._output.flush()
        return b""
