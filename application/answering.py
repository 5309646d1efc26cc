"""One answer's output items, in the order the model makes them: the message (spoken or
text), opened at its first words, and each tool call. The conversation keeps them; the client
is told of each as it begins, grows and ends."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from application.conversation_events import (
    CallArguments,
    OutputAdded,
    OutputDone,
    ReplyAudio,
    ReplyDone,
    ReplyStarted,
    ReplyText,
    Tell,
)
from application.replying import Reply, ReplyFinished
from application.replying import ReplyAudio as Sound
from application.replying import ReplyText as Words
from application.tool_calls import ReplyCall, ReplyCallArguments, ReplyCallDone
from domain.conversation import Conversation, Item


def _item_id() -> str:
    return "item_" + uuid.uuid4().hex[:20]


class Answer:
    def __init__(
        self,
        reply: Reply,
        *,
        items: Conversation,
        tell: Tell,
        trimmed: Callable[[], Awaitable[None]],
        spoken: bool,
        in_conversation: bool,
        tag: Any,
    ) -> None:
        self.reply = reply
        self.items = items
        self.tell = tell
        self.trimmed = trimmed
        self.spoken = spoken
        self.keep = in_conversation
        self.tag = tag
        self.outputs: list[Item] = []
        self.previous: dict[str, str | None] = {}  # item id -> the item before it
        self.message: Item | None = None
        self.calls: dict[int, Item] = {}  # by the model's call index

    async def run(self) -> None:
        rid = self.reply.response_id
        await self.tell(ReplyStarted(rid, self.tag))
        finished: ReplyFinished | None = None
        async for event in self.reply.events():
            if isinstance(event, Words):
                at = await self._message()
                await self.tell(ReplyText(rid, at.id, event.delta, self.spoken, self._index(at)))
            elif isinstance(event, Sound):
                at = await self._message()
                await self.tell(ReplyAudio(rid, at.id, event.data, self._index(at)))
            elif isinstance(event, ReplyCall):
                call_id = event.call_id
                if self.items.has_call(call_id):  # a model that repeats ids: still one each
                    call_id = "call_" + uuid.uuid4().hex[:20]
                call = Item(id=_item_id(), role="assistant", audio=False, type="function_call",
                            call_id=call_id, name=event.name, status="in_progress")  # fmt: skip
                self.calls[event.index] = call
                await self._add(call)
            elif isinstance(event, ReplyCallArguments):
                call = self.calls[event.index]
                call.text += event.delta
                await self.tell(CallArguments(rid, call, self._index(call), event.delta))
            elif isinstance(event, ReplyCallDone):
                await self._done(self.calls[event.index], "completed")
            else:
                finished = event
        assert finished is not None
        await self._finish(finished)

    async def _finish(self, finished: ReplyFinished) -> None:
        status = "completed" if finished.status == "completed" else "incomplete"
        for call in self.calls.values():
            if call.status == "in_progress":  # cut off: its arguments may be partial
                await self._done(call, "incomplete")
        if self.message is not None or not self.calls:
            item = await self._message()
            item.pieces, item.audio_ms, item.text = (
                finished.pieces,
                finished.audio_ms,
                finished.text,
            )
            if finished.status == "cancelled" and self.spoken:
                item.truncate(finished.audio_ms + 1)  # what was sent is what the model said
            await self._done(item, status)
        if self.keep:
            self.items.bound(keep=self.outputs[-1].id if self.outputs else None)
            await self.trimmed()
        await self.tell(
            ReplyDone(
                self.reply.response_id,
                list(self.outputs),
                self.tag,
                finished.status,
                finished.reason,
                finished.code,
                finished.message,
                input_chars=sum(len(turn.text) for turn in self.reply.turns),
                output_chars=sum(len(item.text) for item in self.outputs),
            )
        )

    async def _message(self) -> Item:
        if self.message is None:
            self.message = Item(
                id=_item_id(), role="assistant", audio=self.spoken, status="in_progress"
            )
            await self._add(self.message)
        return self.message

    async def _add(self, item: Item) -> None:
        self.outputs.append(item)
        self.previous[item.id] = self.items.add(item) if self.keep else None
        rid = self.reply.response_id
        await self.tell(
            OutputAdded(rid, item, self.previous[item.id], self.keep, self._index(item))
        )
        await self.trimmed()

    async def _done(self, item: Item, status: str) -> None:
        item.status = "completed" if status == "completed" else "incomplete"
        rid = self.reply.response_id
        await self.tell(OutputDone(rid, item, self.previous[item.id], self.keep, self._index(item)))

    def _index(self, item: Item) -> int:
        return self.outputs.index(item)
