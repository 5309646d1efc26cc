"""A live stream's session events as Deepgram's messages: `Results` (interim and final),
`SpeechStarted` and `UtteranceEnd`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from application.transcribe_stream import (
    Failed,
    Final,
    Partial,
    SpeechStarted,
    SpeechStopped,
    StreamEvent,
)
from domain.utterances import Endpointing
from domain.words import TimedWord, estimated_words, segment_words
from entrypoints.deepgram import options, shapes

Send = Callable[[dict[str, Any]], Awaitable[None]]


class LiveResults:
    """Why each utterance ended comes with its final: voice activity (`speech_final`), the
    client's Finalize (`from_finalize`), or neither (the length bound, the stream's end)."""

    def __init__(
        self, asked: options.Live, request_id: str, send: Send, position: Callable[[], float]
    ) -> None:
        self.asked = asked
        self.request_id = request_id
        self.send = send
        self.position = position  # seconds of the stream heard so far
        endpoint = asked.endpoint_ms
        self.policy = Endpointing(endpoint_ms=endpoint) if endpoint is not None else None
        self._pending = 0  # utterances ended whose final has not come yet
        self._speaking = False
        self._speech_at = 0.0
        self._last_word_end: float | None = None  # words not yet followed by an UtteranceEnd

    async def finalized_nothing(self) -> None:
        """Finalize with nothing to finalize: an empty final says so."""
        await self.send(self._results(self.position(), 0.0, "", [], final=True, finalize=True))

    async def emit(self, event: StreamEvent) -> None:
        if isinstance(event, SpeechStarted):
            self._speaking, self._speech_at = True, event.audio_ms / 1000
            await self.utterance_end_due()
            if self.asked.vad_events:
                start = self._speech_at
                await self.send({"type": "SpeechStarted", "channel": [0], "timestamp": start})
        elif isinstance(event, SpeechStopped):
            self._speaking = False
            self._pending += 1
        elif isinstance(event, Partial):
            if self.asked.interim_results:
                start, duration = event.start_ms / 1000, event.audio_ms / 1000
                words = estimated_words(event.text, start, start + duration, 0.0)
                await self.send(self._results(start, duration, event.text, words, final=False))
        elif isinstance(event, Final):
            await self._final(event)
        elif isinstance(event, Failed):
            self._pending -= 1
            message = f"an utterance could not be transcribed: {event.message}"
            await self.send(shapes.error_message(event.code, message))

    async def _final(self, event: Final) -> None:
        self._pending -= 1
        transcript = event.result.transcript
        words = segment_words(transcript, event.start, event.end)
        by_voice = event.reason in ("silence", "turn") and self.asked.endpoint_ms is not None
        message = self._results(
            event.start,
            event.end - event.start,
            transcript.text,
            words,
            final=True,
            speech_final=by_voice,
            finalize=event.reason == "client",
        )
        await self.send(message)
        if words:
            self._last_word_end = words[-1].end
        await self.utterance_end_due()

    async def utterance_end_due(self) -> None:
        """`UtteranceEnd` once `utterance_end_ms` of audio passed with no word after the last
        final's words (counted in audio time: the stream's position, or where speech began
        again)."""
        last = self._last_word_end
        gap_ms = self.asked.utterance_end_ms
        if gap_ms is None or last is None or self._pending:
            return  # (a final still to come may have later words)
        until = self._speech_at if self._speaking else self.position()
        if until - last < gap_ms / 1000 - 1e-6:
            return
        if self._speaking and self._speech_at < last:
            return  # the speech going on is the one those words came from
        self._last_word_end = None
        channel = shapes.CHANNEL_INDEX
        await self.send({"type": "UtteranceEnd", "channel": channel, "last_word_end": last})

    def _results(
        self,
        start: float,
        duration: float,
        text: str,
        words: list[TimedWord],
        *,
        final: bool,
        speech_final: bool = False,
        finalize: bool = False,
    ) -> dict[str, Any]:
        common = self.asked.common
        return shapes.results_message(
            request=self.request_id,
            model=common.model_name,
            start=start,
            duration=max(duration, 0.0),
            alternative=shapes.alternative(text, words, common.punctuate),
            is_final=final,
            speech_final=speech_final,
            from_finalize=finalize,
        )
