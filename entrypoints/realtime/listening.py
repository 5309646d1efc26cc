"""Audio in on a Realtime session: the listening session and its input_audio_buffer and
input transcription events."""

from __future__ import annotations

import asyncio
import binascii
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from application.listening_session import ListeningSession, StartListening
from application.transcribe_stream import (
    Failed,
    Final,
    Partial,
    SpeechStarted,
    SpeechStopped,
    StreamEvent,
)
from application.transcript_deltas import TranscriptDeltas
from domain.conversation import Conversation, Item
from domain.errors import InvalidRequest
from entrypoints.realtime.config import SessionConfig
from entrypoints.realtime.shapes import item_shape

Send = Callable[[dict[str, Any]], Awaitable[None]]


class UserTurn:
    """What a finished utterance hands to the conversation: its item and when speech ended."""

    def __init__(self, item: Item, speech_ended_at: float) -> None:
        self.item = item
        self.speech_ended_at = speech_ended_at


class AudioIn:
    """One listening session at a time, opened on the first append with the session's input
    settings; utterances become user items in the conversation."""

    def __init__(
        self,
        *,
        listen: StartListening,
        allowance: Callable[[], Any],
        send: Send,
        conversation: Conversation,
        on_speech: Callable[[], None],
        on_turn: Callable[[UserTurn], Awaitable[None]],
        monotonic: Callable[[], float],
        max_append_chars: int,
    ) -> None:
        self.listen = listen
        self.allowance = allowance
        self.send = send
        self.conversation = conversation
        self.on_speech = on_speech  # barge-in
        self.on_turn = on_turn
        self.monotonic = monotonic
        self.max_append_chars = max_append_chars
        self.session: ListeningSession | None = None
        self._key: tuple[Any, ...] | None = None
        self._config: SessionConfig | None = None
        self._items: dict[int, str] = {}  # utterance -> item id
        self._sent: dict[int, TranscriptDeltas] = {}  # utterance -> what was sent of it
        self._added: dict[int, tuple[Item, asyncio.Event]] = {}

    @property
    def busy(self) -> bool:
        return self.session is not None

    async def configure(self, config: SessionConfig) -> None:
        """New input settings take effect at the next append; the open stream is finished."""
        self._config = config
        if self._key is not None and self._key != config.listening_key():
            await self.stop(finish=True)

    async def append(self, audio: Any) -> None:
        if not isinstance(audio, str) or not audio:
            raise InvalidRequest("audio must be base64-encoded audio bytes")
        if len(audio) > self.max_append_chars:
            raise InvalidRequest(
                f"one append carries at most {self.max_append_chars} base64 characters; "
                "send audio in smaller chunks"
            )
        try:
            data = binascii.a2b_base64(audio, strict_mode=True)
        except (binascii.Error, ValueError) as error:
            raise InvalidRequest("audio is not valid base64") from error
        session = self.session or self._open()
        await session.feed(data)

    async def commit(self) -> None:
        if self.session is None or not await self.session.end_utterance():
            raise InvalidRequest(
                "the input audio buffer is empty: append audio before committing",
            )

    async def clear(self) -> None:
        if self.session is not None:
            self.session.clear()
        await self.send({"type": "input_audio_buffer.cleared"})

    async def stop(self, *, finish: bool) -> None:
        session, self.session, self._key = self.session, None, None
        if session is not None:
            await session.stop(finish=finish)

    def _open(self) -> ListeningSession:
        config = self._config
        assert config is not None
        turn = config.turn_detection
        transcription = config.transcription
        self._items, self._sent, self._added = {}, {}, {}
        self.session = self.listen.open(
            stream_id=config.id + "-" + uuid.uuid4().hex[:6],
            encoding=config.input_encoding,
            sample_rate=config.rate_of(config.input_format),
            language=transcription.language if transcription else None,
            allowance=self.allowance(),
            emit=self._emit,
            transport="realtime",
            policy=turn.endpointing() if turn is not None else None,
            manual=turn is None,
            prompt=transcription.prompt if transcription else None,
        )
        self._key = config.listening_key()
        return self.session

    def _item_id(self, utterance: int) -> str:
        if utterance not in self._items:
            self._items[utterance] = "item_" + uuid.uuid4().hex[:20]
        return self._items[utterance]

    async def _emit(self, event: StreamEvent) -> None:
        if isinstance(event, SpeechStarted):
            self.on_speech()
            await self.send(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": event.audio_ms,
                    "item_id": self._item_id(event.utterance),
                }
            )
        elif isinstance(event, SpeechStopped):
            await self._committed(event.utterance, event.audio_ms)
        elif isinstance(event, Partial):
            await self._delta(event.utterance, event.text)
        elif isinstance(event, Final):
            await self._final(event)
        elif isinstance(event, Failed):
            await self._failed(event)

    async def _committed(self, utterance: int, audio_end_ms: int | None) -> Item:
        """The utterance's item, added (and announced) once; a final racing the commit waits
        for the announcement, so clients see committed and added before its transcript."""
        if utterance in self._added:
            item, announced = self._added[utterance]
            await announced.wait()
            return item
        item = Item(id=self._item_id(utterance), role="user", audio=True, status="in_progress")
        announced = asyncio.Event()
        self._added[utterance] = (item, announced)
        previous = self.conversation.add(item)
        try:
            config = self._config
            if audio_end_ms is not None and config and config.turn_detection is not None:
                await self.send(
                    {
                        "type": "input_audio_buffer.speech_stopped",
                        "audio_end_ms": audio_end_ms,
                        "item_id": item.id,
                    }
                )
            await self.send(
                {
                    "type": "input_audio_buffer.committed",
                    "item_id": item.id,
                    "previous_item_id": previous,
                }
            )
            await self.send(
                {
                    "type": "conversation.item.added",
                    "previous_item_id": previous,
                    "item": item_shape(item),
                }
            )
        finally:
            announced.set()
        return item

    async def _delta(self, utterance: int, text: str) -> None:
        """Deltas come while the user speaks (before the commit, unlike OpenAI's) and only add
        to what was sent."""
        delta = self._sent.setdefault(utterance, TranscriptDeltas()).delta(text)
        if delta:
            await self.send(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "item_id": self._item_id(utterance),
                    "content_index": 0,
                    "delta": delta,
                }
            )

    async def _final(self, event: Final) -> None:
        item = await self._committed(event.utterance, None)
        transcript = event.result.transcript
        text = transcript.text
        await self._delta(event.utterance, text)
        item.text, item.status = text, "completed"
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item.id,
                "content_index": 0,
                "transcript": text,
                "usage": {"type": "duration", "seconds": round(event.end - event.start, 3)},
                "language": transcript.language,
            }
        )
        await self.send(
            {"type": "conversation.item.done", "item": item_shape(item, transcript=text)}
        )
        ended_at = self.monotonic() - event.end_of_speech_lag_ms / 1000
        await self.on_turn(UserTurn(item, ended_at))

    async def _failed(self, event: Failed) -> None:
        item = await self._committed(event.utterance, None)
        item.status = "incomplete"
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.failed",
                "item_id": item.id,
                "content_index": 0,
                "error": {
                    "type": "transcription_error",
                    "code": event.code,
                    "message": event.message,
                },
            }
        )
        await self.send({"type": "conversation.item.done", "item": item_shape(item)})
