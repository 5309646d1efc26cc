"""Answers on a Realtime session: one reply at a time, rendered as response.* events."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from application.access import ANONYMOUS, Principal
from application.replying import (
    OutputAudio,
    Reply,
    ReplyAudio,
    ReplyFinished,
    ReplyText,
    Responding,
)
from application.speech_pipeline import SpeechPipeline
from domain.conversation import Conversation, Item
from domain.errors import InvalidRequest
from entrypoints.openai.speech import voice_of
from entrypoints.realtime.config import (
    MAX_INSTRUCTIONS,
    SessionConfig,
    max_tokens,
)
from entrypoints.realtime.listening import UserTurn
from entrypoints.realtime.shapes import item_shape

Send = Callable[[dict[str, Any]], Awaitable[None]]
HISTORY_CHARS = 32_000  # the newest items that fit go to the model


class ResponseOut:
    def __init__(
        self,
        *,
        responding: Responding,
        speech: SpeechPipeline,
        send: Send,
        conversation: Conversation,
        beta: bool,
        max_text_chars: int,
    ) -> None:
        self.responding = responding
        self.speech = speech
        self.send = send
        self.conversation = conversation
        self.beta = beta
        self.max_text_chars = max_text_chars
        self.principal: Principal = ANONYMOUS
        self.reply: Reply | None = None
        self.task: asyncio.Task[None] | None = None
        self._starting = False  # a start awaits the speaking session: still one at a time

    @property
    def active(self) -> bool:
        return self._starting or (self.task is not None and not self.task.done())

    def cancel(self, reason: str) -> bool:
        if self.reply is None or not self.active:
            return False
        self.reply.cancel(reason)
        return True

    async def wait(self) -> None:
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)

    async def start(
        self, config: SessionConfig, options: dict[str, Any], turn: UserTurn | None
    ) -> None:
        if self.active:
            raise InvalidRequest(
                "a response is in progress; cancel it (response.cancel) or wait for response.done"
            )
        self._starting = True
        try:
            await self._start(config, options, turn)
        finally:
            self._starting = False

    async def _start(
        self, config: SessionConfig, options: dict[str, Any], turn: UserTurn | None
    ) -> None:
        instructions = options.get("instructions", config.instructions)
        if not isinstance(instructions, str) or len(instructions) > MAX_INSTRUCTIONS:
            raise InvalidRequest(
                f"instructions must be a string of at most {MAX_INSTRUCTIONS} characters"
            )
        modalities = options.get(
            "output_modalities", options.get("modalities", list(config.output_modalities))
        )
        if self.beta and isinstance(modalities, list) and "audio" in modalities:
            modalities = ["audio"]
        if modalities not in (["audio"], ["text"]):
            raise InvalidRequest('output_modalities must be ["audio"] or ["text"]')
        limit = max_tokens(options.get("max_output_tokens", config.max_output_tokens))
        out_of_band = options.get("conversation") == "none"
        audio = None
        if modalities == ["audio"]:
            output = (
                options.get("audio", {}).get("output", {})
                if isinstance(options.get("audio"), dict)
                else {}
            )
            voice = output.get("voice", config.voice) if isinstance(output, dict) else config.voice
            if not isinstance(voice, str):
                raise InvalidRequest("voice must be a string")
            audio = OutputAudio(
                encoding=config.output_encoding,
                rate=config.rate_of(config.output_format),
                voice=voice_of(voice, self.speech.voices()),
                speed=config.speed,
            )
        response_id = "resp_" + uuid.uuid4().hex[:20]
        reply = await self.responding.start(
            self.principal,
            turns=self.conversation.turns(instructions, HISTORY_CHARS),
            response_id=response_id,
            audio=audio,
            max_tokens=limit,
            speech_ended_at=turn.speech_ended_at if turn is not None else None,
        )
        self.reply = reply
        shape = {
            "id": response_id,
            "object": "realtime.response",
            "conversation_id": None if out_of_band else "conv_" + config.id.removeprefix("sess_"),
            "output_modalities": modalities,
            "metadata": options.get("metadata")
            if isinstance(options.get("metadata"), dict)
            else None,
        }
        self.task = asyncio.get_running_loop().create_task(
            self._render(reply, shape, audio is not None, out_of_band)
        )

    async def _render(
        self, reply: Reply, shape: dict[str, Any], audio: bool, out_of_band: bool
    ) -> None:
        response_id = shape["id"]
        item = Item(
            id="item_" + uuid.uuid4().hex[:20], role="assistant", audio=audio, status="in_progress"
        )
        where = {"response_id": response_id, "output_index": 0}
        part_at = {**where, "item_id": item.id, "content_index": 0}
        await self.send(
            {
                "type": "response.created",
                "response": {
                    **shape,
                    "status": "in_progress",
                    "status_details": None,
                    "output": [],
                    "usage": None,
                },
            }
        )
        previous = None if out_of_band else self.conversation.add(item)
        await self.send(
            {
                "type": "response.output_item.added",
                **where,
                "item": item_shape(item, beta=self.beta),
            }
        )
        if not out_of_band:
            await self.send(
                {
                    "type": "conversation.item.added",
                    "previous_item_id": previous,
                    "item": item_shape(item, beta=self.beta),
                }
            )
        empty = item_shape(item, beta=self.beta)["content"][0]
        await self.send({"type": "response.content_part.added", **part_at, "part": empty})
        text_kind = "response.output_audio_transcript" if audio else "response.output_text"
        finished: ReplyFinished | None = None
        async for event in reply.events():
            if isinstance(event, ReplyText):
                await self.send({"type": f"{text_kind}.delta", **part_at, "delta": event.delta})
            elif isinstance(event, ReplyAudio):
                delta = base64.b64encode(event.data).decode()
                await self.send({"type": "response.output_audio.delta", **part_at, "delta": delta})
            else:
                finished = event
        assert finished is not None
        item.pieces = finished.pieces
        item.audio_ms = finished.audio_ms
        item.text = finished.text
        if finished.status == "cancelled" and audio:
            item.truncate(finished.audio_ms + 1)  # what was sent is what the model said
        item.status = "completed" if finished.status == "completed" else "incomplete"
        done = item_shape(item, beta=self.beta)
        if audio:
            await self.send({"type": "response.output_audio.done", **part_at})
            await self.send({"type": f"{text_kind}.done", **part_at, "transcript": item.text})
        else:
            await self.send({"type": f"{text_kind}.done", **part_at, "text": item.text})
        await self.send(
            {"type": "response.content_part.done", **part_at, "part": done["content"][0]}
        )
        await self.send({"type": "response.output_item.done", **where, "item": done})
        if not out_of_band:
            await self.send(
                {"type": "conversation.item.done", "previous_item_id": previous, "item": done}
            )
        details: dict[str, Any] | None = None
        if finished.status != "completed":
            details = {"type": finished.status, "reason": finished.reason}
            if finished.code is not None:
                details["error"] = {
                    "type": "rate_limit_error"
                    if finished.code == "rate_limited"
                    else "server_error",
                    "code": finished.code,
                    "message": finished.message,
                }
        await self.send(
            {
                "type": "response.done",
                "response": {
                    **shape,
                    "status": finished.status,
                    "status_details": details,
                    "output": [done],
                    "usage": _usage(reply, item),
                },
            }
        )


def _usage(reply: Reply, item: Item) -> dict[str, Any]:
    """Tokens are the chat model's to count; these are characters, roughly a quarter token."""
    given = sum(len(turn.text) for turn in reply.turns)
    return {
        "total_tokens": (given + len(item.text)) // 4,
        "input_tokens": given // 4,
        "output_tokens": len(item.text) // 4,
    }
