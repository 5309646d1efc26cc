"""A live stream's session events as Deepgram's messages: `Results` (interim and final),
`SpeechStarted` and `UtteranceEnd`."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from application.transcribe_stream import (
    Failed,
    Final,
    Partial,
    SpeechStarted,
    SpeechStopped,
    StreamEvent,
)
from domain.utterances import WINDOW_MS, Endpointing
from domain.words import TimedWord, estimated_words, segment_words
from entrypoints.deepgram import options, shapes

Send = Callable[[dict[str, Any]], Awaitable[None]]


class LiveResults:
    def __init__(
        self, asked: options.Live, request_id: str, send: Send, position: Callable[[], float]
    ) -> None:
        self.asked = asked
        self.request_id = request_id
        self.send = send
        self.position = position  # seconds of the stream heard so far
        endpoint = asked.endpoint_ms
        self.policy = Endpointing(endpoint_ms=endpoint) if endpoint is not None else None
        self._starts: dict[int, float] = {}  # utterance -> its start, in stream seconds
        self._next_start = 0.0  # where the next utterance starts when the client cuts them
        self._finalized: set[int] = set()  # utterances ended by Finalize
        self._cut: set[int] = set()  # ended otherwise than by silence (Finalize, close, bound)
        self._awaiting: list[int] = []  # utterances ended whose final has not come yet
        self._cutting: str | None = None  # "finalize" or "close": whose are the stops now
        self._speaking = False
        self._speech_at = 0.0
        self._last_word_end: float | None = None  # words not yet followed by an UtteranceEnd

    @contextlib.contextmanager
    def cutting(self, why: str) -> Iterator[None]:
        self._cutting = why
        try:
            yield
        finally:
            self._cutting = None

    async def finalized_nothing(self) -> None:
        """Finalize with no utterance in progress: the last one still to come says it; with
        none at all, an empty final."""
        if self._awaiting:
            self._finalized.add(self._awaiting[-1])
            return
        await self.send(self._results(self.position(), 0.0, "", [], final=True, finalize=True))

    async def emit(self, event: StreamEvent) -> None:
        if isinstance(event, SpeechStarted):
            start = event.audio_ms / 1000
            self._starts[event.utterance] = start
            self._speaking, self._speech_at = True, start
            await self.utterance_end_due()
            if self.asked.vad_events:
                await self.send({"type": "SpeechStarted", "channel": [0], "timestamp": start})
        elif isinstance(event, SpeechStopped):
            self._speaking = False
            self._awaiting.append(event.utterance)
            if self._cutting is not None:
                self._cut.add(event.utterance)
                if self._cutting == "finalize":
                    self._finalized.add(event.utterance)
            elif self.policy is not None and event.utterance in self._starts:
                length_ms = event.end_ms - 1000 * self._starts[event.utterance]
                if length_ms >= self.policy.max_utterance_ms - WINDOW_MS:
                    self._cut.add(event.utterance)  # at the length bound
        elif isinstance(event, Partial):
            if self.asked.interim_results:
                start = self._starts.get(event.utterance, self._next_start)
                duration = event.audio_ms / 1000
                words = estimated_words(event.text, start, start + duration, 0.0)
                await self.send(self._results(start, duration, event.text, words, final=False))
        elif isinstance(event, Final):
            await self._final(event)
        elif isinstance(event, Failed):
            self._done(event.utterance)
            await self.send(
                shapes.error_message(
                    event.code, f"an utterance could not be transcribed: {event.message}"
                )
            )

    async def _final(self, event: Final) -> None:
        finalized = event.utterance in self._finalized
        by_silence = not finalized and event.utterance not in self._cut
        self._done(event.utterance)
        self._next_start = event.end
        transcript = event.result.transcript
        words = segment_words(transcript, event.start, event.end)
        message = self._results(
            event.start,
            event.end - event.start,
            transcript.text,
            words,
            final=True,
            speech_final=by_silence and self.asked.endpoint_ms is not None,
            finalize=finalized,
        )
        await self.send(message)
        if words:
            self._last_word_end = words[-1].end
        await self.utterance_end_due()

    def _done(self, utterance: int) -> None:
        if utterance in self._awaiting:
            self._awaiting.remove(utterance)
        self._finalized.discard(utterance)
        self._cut.discard(utterance)
        self._starts.pop(utterance, None)

    async def utterance_end_due(self) -> None:
        """`UtteranceEnd` once `utterance_end_ms` of audio passed with no word after the last
        final's words (counted in audio time: the stream's position, or where speech began
        again)."""
        last = self._last_word_end
        gap_ms = self.asked.utterance_end_ms
        if gap_ms is None or last is None or self._awaiting:
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
