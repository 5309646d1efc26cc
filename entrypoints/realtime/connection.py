"""WebSocket /v1/realtime: OpenAI's Realtime API (GA event names; the beta's with
`OpenAI-Beta: realtime=v1`) over the listening, speaking and replying sessions.

The transport admits the client, decodes its events, calls the sessions and renders their
events; an `error` event never closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import msgspec
import structlog
from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect

from application.access import ANONYMOUS, Principal, RateLimited
from domain.conversation import Conversation, Item
from domain.errors import InvalidRequest, VoicePipeError
from domain.token_bucket import TokenBucket
from entrypoints.bootstrap import Container
from entrypoints.openai.speech import voice_of
from entrypoints.realtime.admission import admit
from entrypoints.realtime.config import (
    SessionConfig,
    SessionType,
    new_session,
    render,
    updated,
)
from entrypoints.realtime.listening import AudioIn, UserTurn
from entrypoints.realtime.responses import ResponseOut
from entrypoints.realtime.shapes import BETA_CLIENT_NAMES, BETA_NAMES, error_body, item_shape
from entrypoints.security import hold_slot

log = structlog.get_logger(__name__)

SEND_TIMEOUT = 10.0
EVENTS_PER_SECOND, EVENT_BURST = 100.0, 400.0  # appends of 10 ms audio are 100 a second
MAX_ITEM_CHARS = 20_000
SESSION_SECONDS = 3600  # `expires_at`, as OpenAI's sessions
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


class IdleTimeout(VoicePipeError):
    code = "idle_timeout"


class RealtimeConnection:
    def __init__(self, socket: WebSocket[Any, Any, Any], container: Container) -> None:
        self.socket = socket
        self.container = container
        self.id = uuid.uuid4().hex[:12]
        self.live: set[Any] = socket.app.state.connections
        self.clock = container.clock
        self.principal: Principal = ANONYMOUS
        headers = dict(socket.scope["headers"])
        self.beta = b"realtime=v1" in headers.get(b"openai-beta", b"").lower()
        query = socket.query_params
        kind: SessionType = (
            "transcription" if query.get("intent") == "transcription" else "realtime"
        )
        self.config: SessionConfig = new_session(
            "sess_" + uuid.uuid4().hex[:20], kind, query.get("model")
        )
        self.expires_at = int(time.time()) + SESSION_SECONDS
        self.conversation = Conversation()
        self._send_lock = asyncio.Lock()
        self._events = TokenBucket(EVENTS_PER_SECOND, EVENT_BURST, self.clock.monotonic())
        settings = container.settings
        self.audio = AudioIn(
            listen=container.listen,
            allowance=lambda: container.access.audio_allowance(self.principal),
            send=self.send,
            conversation=self.conversation,
            on_speech=self._barge_in,
            on_turn=self._user_turn,
            monotonic=self.clock.monotonic,
            # 4/3 for base64, plus room: the listening session bounds frames in bytes itself
            max_append_chars=(container.listen.limits.max_frame_bytes * 4) // 3 + 4,
        )
        self.responses = ResponseOut(
            responding=container.responding,
            speech=container.speech,
            send=self.send,
            conversation=self.conversation,
            beta=self.beta,
            max_text_chars=settings.max_text_chars,
        )
        self.closing = False

    async def run(self) -> None:
        principal = await admit(self.socket, self.container, self.live, self)
        if principal is None:
            return
        self.principal = principal
        self.responses.principal = principal
        structlog.contextvars.bind_contextvars(connection_id=self.id)
        log.info("realtime connected", session_type=self.config.type, beta=self.beta)
        keepalive = asyncio.get_running_loop().create_task(
            hold_slot(self.container.access, self.principal, self.id)
        )
        try:
            await self.audio.configure(self.config)
            await self.send({"type": "session.created", "session": self._session()})
            if self.config.type == "realtime":
                try:
                    self.container.responding.check()
                except VoicePipeError as error:
                    await self._error(error)  # said once; transcription still works
            while (event := await self._next_event()) is not None:
                if event["type"] == "websocket.disconnect":
                    break
                await self._receive(event)
        except (WebSocketDisconnect, TimeoutError, OSError):
            pass
        finally:
            self.live.discard(self)
            keepalive.cancel()
            self.responses.cancel("client_left")
            await self.audio.stop(finish=False)
            await self.container.access.disconnect(self.principal, self.id)
            log.info("realtime closed")
            structlog.contextvars.unbind_contextvars("connection_id")

    def _session(self) -> dict[str, Any]:
        return render(self.config, beta=self.beta, expires_at=self.expires_at)

    async def _next_event(self) -> Any:
        idle = self.container.settings.ws_idle_seconds
        while True:
            try:
                return await asyncio.wait_for(self.socket.receive(), idle)
            except TimeoutError:
                if self.responses.active:
                    continue
                with contextlib.suppress(Exception):
                    await self._error(IdleTimeout(f"no event for {idle:g} s; closing"))
                    await self.socket.close(code=1000, reason="idle timeout")
                return None

    async def drain(self, seconds: float) -> None:
        """Server shutting down: the utterance in progress and the answer finish (bounded)."""
        self.closing = True
        try:
            async with asyncio.timeout(seconds):
                await self.audio.stop(finish=True)
                await self.responses.wait()
        except (TimeoutError, WebSocketDisconnect, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                await self.socket.close(code=1001, reason="server shutting down")

    async def send(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if self.beta and kind in BETA_NAMES:
            renamed = BETA_NAMES[kind]
            if renamed is None:
                return
            event = {**event, "type": renamed}
        event = {"event_id": "event_" + uuid.uuid4().hex[:20], **event}
        data = _encoder.encode(event).decode()
        async with self._send_lock:
            await asyncio.wait_for(self.socket.send_text(data), SEND_TIMEOUT)

    async def _error(self, error: Exception, event_id: str | None = None) -> None:
        await self.send({"type": "error", "error": error_body(error, event_id)})

    async def _receive(self, message: Any) -> None:
        event_id: str | None = None
        try:
            text = message.get("text")
            if text is None:
                raise InvalidRequest("the Realtime API takes JSON text events, not binary frames")
            if not self._events.take(1, self.clock.monotonic()):
                raise RateLimited("too many events; at most 100 a second")
            try:
                event = _decoder.decode(text)
            except msgspec.DecodeError as error:
                raise InvalidRequest("the event is not valid JSON") from error
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                raise InvalidRequest("an event is a JSON object with a string `type`")
            event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
            await self._dispatch(event)
        except VoicePipeError as error:
            await self._error(error, event_id)
        except (WebSocketDisconnect, TimeoutError):
            raise
        except Exception as error:
            log.exception("unhandled error in realtime event")
            await self._error(error, event_id)

    async def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if self.beta:
            kind = BETA_CLIENT_NAMES.get(kind, kind)
        if kind == "input_audio_buffer.append":
            await self.audio.append(event.get("audio"))
            return
        if kind != "session.update":
            await self.container.access.admit_request(self.principal)
        if kind == "session.update":
            await self._update(event.get("session"))
        elif kind == "input_audio_buffer.commit":
            await self.audio.commit()
        elif kind == "input_audio_buffer.clear":
            await self.audio.clear()
        elif kind == "conversation.item.create":
            await self._create_item(event)
        elif kind == "conversation.item.delete":
            await self._delete_item(event.get("item_id"))
        elif kind == "conversation.item.retrieve":
            item = self.conversation.get(_item_id(event.get("item_id")))
            await self.send({"type": "conversation.item.retrieved", "item": item_shape(item)})
        elif kind == "conversation.item.truncate":
            await self._truncate(event)
        elif kind == "response.create":
            await self._respond(event.get("response") or {}, None)
        elif kind == "response.cancel":
            if not self.responses.cancel("client_cancelled"):
                raise InvalidRequest("no response is in progress to cancel")
        elif kind == "output_audio_buffer.clear":
            raise InvalidRequest("output_audio_buffer.clear is for WebRTC connections only")
        else:
            raise InvalidRequest(f"unknown or unsupported event type: {kind[:100]!r}")

    async def _update(self, session: Any) -> None:
        config = updated(self.config, session, beta=self.beta)
        voice_of(config.voice, self.container.speech.voices())  # refused now, not at reply
        self.config = config
        await self.audio.configure(config)
        kind = (
            "transcription_session.updated"
            if self.beta and config.type == "transcription"
            else "session.updated"
        )
        await self.send({"type": kind, "session": self._session()})

    async def _create_item(self, event: dict[str, Any]) -> None:
        item = _typed_item(event.get("item"))
        previous = event.get("previous_item_id")
        if previous is not None and not isinstance(previous, str):
            raise InvalidRequest("previous_item_id must be a string")
        after = self.conversation.add(item, previous)
        await self.send(
            {"type": "conversation.item.added", "previous_item_id": after, "item": item_shape(item)}
        )
        await self.send(
            {"type": "conversation.item.done", "previous_item_id": after, "item": item_shape(item)}
        )

    async def _delete_item(self, item_id: Any) -> None:
        self.conversation.delete(_item_id(item_id))
        await self.send({"type": "conversation.item.deleted", "item_id": item_id})

    async def _truncate(self, event: dict[str, Any]) -> None:
        item = self.conversation.get(_item_id(event.get("item_id")))
        end = event.get("audio_end_ms")
        if item.role != "assistant" or not item.audio:
            raise InvalidRequest("only an assistant's audio item can be truncated")
        if isinstance(end, bool) or not isinstance(end, int) or not 0 <= end <= item.audio_ms:
            raise InvalidRequest(
                f"audio_end_ms must be an integer from 0 to the item's {item.audio_ms:.0f} ms"
            )
        item.truncate(end)
        await self.send(
            {
                "type": "conversation.item.truncated",
                "item_id": item.id,
                "content_index": 0,
                "audio_end_ms": end,
            }
        )

    async def _respond(self, options: Any, turn: UserTurn | None) -> None:
        if self.config.type != "realtime":
            raise InvalidRequest("transcription sessions do not create responses")
        if self.closing:
            raise InvalidRequest("the server is shutting down; reconnect shortly")
        if not isinstance(options, dict):
            raise InvalidRequest("response must be an object")
        await self.responses.start(self.config, options, turn)

    def _barge_in(self) -> None:
        turn = self.config.turn_detection
        if turn is not None and turn.interrupt_response:
            self.responses.cancel("turn_detected")

    async def _user_turn(self, turn: UserTurn) -> None:
        detection = self.config.turn_detection
        if self.config.type != "realtime" or detection is None or not detection.create_response:
            return
        if not turn.item.text.strip():
            return  # nothing was said: no answer
        try:
            await self.container.access.admit_request(self.principal)
            await self._respond({}, turn)
        except VoicePipeError as error:
            await self._error(error)


def _item_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRequest("item_id must be a non-empty string")
    return value


def _typed_item(item: Any) -> Item:
    """A message item from `conversation.item.create`: text content only."""
    if not isinstance(item, dict):
        raise InvalidRequest("item must be an object")
    if item.get("type", "message") != "message":
        raise InvalidRequest("only message items are supported (no function calls)")
    role = item.get("role")
    if role not in ("user", "assistant", "system"):
        raise InvalidRequest("item.role must be user, assistant or system")
    content = item.get("content")
    if not isinstance(content, list) or not content:
        raise InvalidRequest("item.content must be a non-empty list")
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in (
            "input_text",
            "text",
            "output_text",
        ):
            raise InvalidRequest(
                "item content must be text (input_text); send audio with input_audio_buffer.append"
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidRequest("a text content part needs a string `text`")
        texts.append(text)
    text = "\n".join(texts)
    if len(text) > MAX_ITEM_CHARS:
        raise InvalidRequest(f"an item's text is limited to {MAX_ITEM_CHARS} characters")
    item_id = item.get("id")
    if item_id is not None and (not isinstance(item_id, str) or not 1 <= len(item_id) <= 64):
        raise InvalidRequest("item.id must be a string of at most 64 characters")
    return Item(id=item_id or "item_" + uuid.uuid4().hex[:20], role=role, audio=False, text=text)
