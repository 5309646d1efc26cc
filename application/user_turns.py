"""The user's side of a conversation: a listening session's events become user items, with
their transcription, in the order a client must see them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from application.conversation_events import (
    InputCommitted,
    ItemAdded,
    ItemDone,
    SpeechBegan,
    SpeechEnded,
    Tell,
    TranscriptCompleted,
    TranscriptDelta,
    TranscriptFailed,
)
from application.stream_events import (
    EagerEndOfTurn,
    Failed,
    Final,
    Partial,
    SpeechStarted,
    SpeechStopped,
    StreamEvent,
    TurnResumed,
)
from application.transcript_deltas import TranscriptDeltas
from domain.conversation import Conversation, Item


class UserTurn:
    """A finished utterance: its item and when its speech ended (monotonic seconds)."""

    def __init__(self, item: Item, speech_ended_at: float) -> None:
        self.item = item
        self.speech_ended_at = speech_ended_at


class UserTurns:
    """One listening session's utterances as user items.

    Rules:
    - Speech that starts is announced at once (and may interrupt an answer: `on_speech`).
    - An utterance's item is added once, at its commit (voice activity's or the client's);
      a final racing the commit waits, so clients see committed and added before its text.
    - Transcription deltas only ever add text (drafts that rewrite wait for one that agrees).
    - A finished utterance is handed to `on_turn`; bookkeeping of an utterance ends with it.
    - A likely end of turn (the early final's text) goes to `on_likely_end` before the final;
      the user going on after it, to `on_resumed`.
    """

    def __init__(
        self,
        *,
        items: Conversation,
        tell: Tell,
        on_speech: Callable[[], None],
        on_turn: Callable[[UserTurn], Awaitable[None]],
        monotonic: Callable[[], float],
        announce_stops: bool,
        trimmed: Callable[[], Awaitable[None]],
        on_likely_end: Callable[[str], Awaitable[None]] | None = None,
        on_resumed: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.on_likely_end = on_likely_end
        self.on_resumed = on_resumed
        self.items = items
        self.trimmed = trimmed  # says which items the bounds dropped
        self.tell = tell
        self.on_speech = on_speech
        self.on_turn = on_turn
        self.monotonic = monotonic
        self.announce_stops = announce_stops  # voice activity ends turns (not only the client)
        self._ids: dict[int, str] = {}  # utterance -> item id
        self._sent: dict[int, TranscriptDeltas] = {}
        self._added: dict[int, tuple[Item, asyncio.Event]] = {}

    async def heard(self, event: StreamEvent) -> None:
        if isinstance(event, SpeechStarted):
            self.on_speech()
            await self.tell(SpeechBegan(self._id(event.utterance), event.audio_ms))
        elif isinstance(event, SpeechStopped):
            await self._committed(event.utterance, event.end_ms)
        elif isinstance(event, Partial):
            await self._delta(event.utterance, event.text)
        elif isinstance(event, Final):
            await self._final(event)
        elif isinstance(event, Failed):
            await self._failed(event)
        elif isinstance(event, EagerEndOfTurn) and self.on_likely_end is not None:
            await self.on_likely_end(event.transcript.text)
        elif isinstance(event, TurnResumed) and self.on_resumed is not None:
            await self.on_resumed()

    def _id(self, utterance: int) -> str:
        return self._ids.setdefault(utterance, "item_" + uuid.uuid4().hex[:20])

    async def _committed(self, utterance: int, audio_end_ms: int | None) -> Item:
        if utterance in self._added:
            item, announced = self._added[utterance]
            await announced.wait()
            return item
        item = Item(id=self._id(utterance), role="user", audio=True, status="in_progress")
        announced = asyncio.Event()
        self._added[utterance] = (item, announced)
        previous = self.items.add(item)
        try:
            if audio_end_ms is not None and self.announce_stops:
                await self.tell(SpeechEnded(item.id, audio_end_ms))
            await self.tell(InputCommitted(item.id, previous))
            await self.tell(ItemAdded(item, previous))
            await self.trimmed()
        finally:
            announced.set()
        return item

    async def _delta(self, utterance: int, text: str) -> None:
        delta = self._sent.setdefault(utterance, TranscriptDeltas()).delta(text)
        if delta:
            await self.tell(TranscriptDelta(self._id(utterance), delta))

    async def _final(self, event: Final) -> None:
        item = await self._committed(event.utterance, None)
        transcript = event.result.transcript
        await self._delta(event.utterance, transcript.text)
        self._forget(event.utterance)
        item.text, item.status = transcript.text, "completed"
        self.items.bound(keep=item.id)
        await self.trimmed()
        seconds = round(event.end - event.start, 3)
        await self.tell(TranscriptCompleted(item.id, transcript.text, seconds, transcript.language))
        await self.tell(ItemDone(item, None))
        await self.on_turn(UserTurn(item, self.monotonic() - event.end_of_speech_lag_ms / 1000))

    async def _failed(self, event: Failed) -> None:
        item = await self._committed(event.utterance, None)
        self._forget(event.utterance)
        item.status = "incomplete"
        await self.tell(TranscriptFailed(item.id, event.code, event.message))
        await self.tell(ItemDone(item, None))

    def _forget(self, utterance: int) -> None:
        self._ids.pop(utterance, None)
        self._sent.pop(utterance, None)
        self._added.pop(utterance, None)
