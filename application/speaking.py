"""Use case at the edge of every transport that speaks: quotas, limits and content retention
applied once, the same way, whatever the protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator

from application.access import Access, Principal
from application.allowance import Allowance
from application.ports import AudioConverter
from application.retention import Retention
from application.stream_speech import (
    SpeechStream,
    StreamChunk,
    StreamItem,
    StreamSpeech,
    StreamStarted,
)
from application.synthesize_speech import SpeakCommand, SpeechResult, SynthesizeSpeech
from domain.speech import AudioClip, AudioFormat
from domain.wav import streaming_header


class SpeakingSession:
    """One streamed synthesis for one key: text in (whole or in pieces), audio events out.

    Rules:
    - Each piece of text is checked against the stream's limit, then reserved against the
      key's characters (atomically), then queued: refused text costs nothing.
    - The key pays for what was synthesized: `close` gives back what was reserved and never
      spoken (cancelled, or lost to a failure).
    - `cancel` stops after the piece in synthesis; `close` records the run's events.
    """

    def __init__(
        self,
        stream: SpeechStream,
        streams: StreamSpeech,
        allowance: Allowance,
        converter: AudioConverter,
    ) -> None:
        self.stream = stream
        self._streams = streams
        self._allowance = allowance
        self._converter = converter
        self._codec = streams.pipeline.codec
        self._items = stream.items()
        self._rate = 0

    async def add_text(self, text: str) -> None:
        self.stream.check_text(text)
        await self._allowance.reserve(len(text))
        self.stream.add_text(text)

    def finish(self) -> None:
        self.stream.finish()

    def cancel(self) -> None:
        self.stream.cancel()

    def items(self) -> AsyncIterator[StreamItem]:
        return self._items

    async def started(self) -> StreamStarted:
        """The stream's start (its voice and rate): errors before any audio raise here."""
        first = await anext(self._items)
        assert isinstance(first, StreamStarted)
        self._rate = first.sample_rate
        return first

    async def audio(
        self, audio_format: AudioFormat, rate: int | None = None
    ) -> AsyncIterator[bytes]:
        """The rest of the stream in a client's format, piece by piece (after `started`):
        PCM at the voice's rate or at `rate`, a WAV of unknown length, or each piece encoded
        (MP3 and AAC are frame streams; Ogg allows chained streams)."""
        if audio_format is AudioFormat.WAV:
            yield streaming_header(self._rate)
        async for item in self._items:
            if not isinstance(item, StreamChunk) or not item.pcm:
                continue  # a piece trimmed to nothing ("...") has no samples to send
            if audio_format not in (AudioFormat.WAV, AudioFormat.PCM):
                yield await self._codec.encode(AudioClip(item.pcm, self._rate), audio_format)
            elif rate is None or rate == self._rate:
                yield item.pcm
            else:
                yield self._converter.resample(item.pcm, self._rate, rate)

    async def close(self) -> None:
        try:
            await self._streams.close(self.stream)
        finally:
            allowance = self._allowance
            allowance.unuse(min(self.stream.unspoken_chars(), allowance.used))
            await allowance.settle()


class Speaking:
    """Speech out for a key: one-shot or streamed. The one place a speak command is built:
    each value is checked (text, speed, format, voice) before anything is charged, and the
    key is charged the characters of the text as normalized, as spoken."""

    def __init__(
        self,
        *,
        synthesize: SynthesizeSpeech,
        streams: StreamSpeech,
        access: Access,
        retention: Retention,
        converter: AudioConverter,
    ) -> None:
        self.converter = converter
        self.synthesize = synthesize
        self.streams = streams
        self.access = access
        self.retention = retention

    async def speak(
        self,
        principal: Principal,
        text: str,
        *,
        pipeline_id: str,
        transport: str,
        voice: str | None = None,
        audio_format: str = "wav",
        speed: float = 1.0,
        use_cache: bool = True,
        refresh_cache: bool = False,
    ) -> SpeechResult:
        command = SpeakCommand(text, voice, audio_format, use_cache, refresh_cache, speed)
        allowance = self.access.text_allowance(principal)

        async def charge(normalized: str) -> None:  # once every value is valid
            await allowance.reserve(len(normalized))

        try:
            result = await self.synthesize.execute(
                command, pipeline_id=pipeline_id, transport=transport, admit=charge
            )
        except BaseException:
            allowance.unuse(allowance.used)  # nothing was spoken
            raise
        finally:
            await allowance.settle()
        self.retention.keep("tts", result.text)
        return result

    async def open(
        self,
        principal: Principal,
        *,
        pipeline_id: str,
        transport: str,
        voice: str | None = None,
        use_cache: bool = True,
        speed: float = 1.0,
        text: str | None = None,
    ) -> SpeakingSession:
        """A stream for `text` (whole: validated, then reserved, now) or for pieces sent
        later."""
        stream = await self.streams.open(
            pipeline_id=pipeline_id,
            transport=transport,
            voice=voice,
            use_cache=use_cache,
            text=text,
            speed=speed,
        )
        allowance = self.access.text_allowance(principal)
        if stream.whole_text is not None:
            try:
                await allowance.reserve(len(stream.whole_text))
            except BaseException as error:
                stream.run.failed("validation", getattr(error, "code", "error"))
                await self.streams.close(stream)
                raise
            self.retention.keep("tts", stream.whole_text)
        return SpeakingSession(stream, self.streams, allowance, self.converter)
