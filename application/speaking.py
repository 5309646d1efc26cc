"""Use case at the edge of every transport that speaks: quotas, limits and content
retention applied once, the same way, whatever the protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator

from application.access import Access, Principal
from application.retention import Retention
from application.stream_speech import SpeechStream, StreamItem, StreamSpeech
from application.synthesize_speech import SpeakCommand, SpeechResult, SynthesizeSpeech
from domain.errors import VoicePipeError


class SpeakingSession:
    """One streamed synthesis for one key: text in (whole or in pieces), audio events out.

    Rules:
    - Each piece of text is checked against the stream's limit, then charged, then queued:
      a key pays for the characters it sent, never for refused ones.
    - `cancel` stops after the piece in synthesis; `close` records the run's events.
    """

    def __init__(
        self, stream: SpeechStream, streams: StreamSpeech, access: Access, principal: Principal
    ) -> None:
        self.stream = stream
        self._streams = streams
        self._access = access
        self._principal = principal

    async def add_text(self, text: str) -> None:
        self.stream.check_text(text)
        await self._access.charge_text(self._principal, len(text))
        self.stream.add_text(text)

    def finish(self) -> None:
        self.stream.finish()

    def cancel(self) -> None:
        self.stream.cancel()

    def items(self) -> AsyncIterator[StreamItem]:
        return self.stream.items()

    async def close(self) -> None:
        await self._streams.close(self.stream)


class Speaking:
    """Speech out for a key: one-shot or streamed."""

    def __init__(
        self,
        *,
        synthesize: SynthesizeSpeech,
        streams: StreamSpeech,
        access: Access,
        retention: Retention,
    ) -> None:
        self.synthesize = synthesize
        self.streams = streams
        self.access = access
        self.retention = retention

    async def speak(
        self, principal: Principal, command: SpeakCommand, *, pipeline_id: str, transport: str
    ) -> SpeechResult:
        self.synthesize.pipeline.candidates(command.voice)  # an unknown voice costs nothing
        await self.access.charge_text(principal, len(command.text))
        self.retention.keep("tts", command.text)
        return await self.synthesize.execute(command, pipeline_id=pipeline_id, transport=transport)

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
        """A stream for `text` (whole: validated and charged now) or for pieces sent later."""
        stream = await self.streams.open(
            pipeline_id=pipeline_id,
            transport=transport,
            voice=voice,
            use_cache=use_cache,
            text=text,
            speed=speed,
        )
        if text is not None:
            try:
                await self.access.charge_text(principal, len(text))
            except VoicePipeError as error:
                stream.run.failed("validation", error.code)
                await self.streams.close(stream)
                raise
            self.retention.keep("tts", text)
        return SpeakingSession(stream, self.streams, self.access, principal)
