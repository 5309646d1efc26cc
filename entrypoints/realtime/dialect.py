"""WebSocket /v1/realtime: OpenAI's Realtime API (GA event names; the beta's with `OpenAI-Beta:
realtime=v1`) as a dialect of the connection core: client events decode to typed commands,
each handled by its registered handler on the conversation and listening sessions; the
conversation's events go out as server events. An `error` event never closes the connection.
"""

from __future__ import annotations

import binascii
import time
import uuid
from typing import Any

import msgspec

from application.connections import Connection
from application.conversation_events import AnswerDropped, ConversationEvent
from application.conversation_session import ConversationSession, Hearing, ReplyOptions
from application.model_choice import choose
from application.noise_reduction import noise_mode
from domain.errors import InvalidRequest, VoicePipeError
from entrypoints.bootstrap import Container
from entrypoints.dialect import BaseDialect, Handlers
from entrypoints.openai.speech import voice_of
from entrypoints.realtime import events as ev
from entrypoints.realtime.render import rendered
from entrypoints.realtime.replies import reply_options
from entrypoints.realtime.session import (
    SessionConfig,
    SessionType,
    new_session,
    read,
    updated,
)
from entrypoints.realtime.shapes import BETA_NAMES, error_body, item_shape, session_shape
from entrypoints.websocket import Frame

SESSION_SECONDS = 3600  # `expires_at`, as OpenAI's sessions
_encoder = msgspec.json.Encoder()
HANDLERS = Handlers()
# OpenAI's transcription models: the service's default, or the model the language needs
OPENAI_MODELS = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")


class RealtimeDialect(BaseDialect[Frame]):
    name = "realtime"
    secrets = True  # a client secret opens a Realtime connection (once)
    HANDLERS = HANDLERS

    def __init__(
        self,
        container: Container,
        *,
        beta: bool,
        kind: SessionType,
        model: str | None,
        own_events: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(container)
        self.beta = beta
        self.own_events = own_events
        self.config: SessionConfig = new_session("sess_" + uuid.uuid4().hex[:20], kind, model)
        self.expires_at = int(time.time()) + SESSION_SECONDS
        self.conversation: ConversationSession | None = None
        self._event_id: str | None = None  # of the frame that failed to decode
        # 4/3 for base64, plus room: the listening session bounds frames in bytes itself
        self.max_append_chars = (container.listen.limits.max_frame_bytes * 4) // 3 + 4

    @property
    def talk(self) -> ConversationSession:
        assert self.conversation is not None, "opened"
        return self.conversation

    @property
    def busy(self) -> bool:
        return self.conversation is not None and self.conversation.active

    def decode(self, frame: Frame) -> ev.ClientEvent:
        try:
            return ev.decode(frame)
        except VoicePipeError:
            self._event_id = ev.event_id_of(frame)
            raise

    def render_error(self, error: VoicePipeError, command: ev.ClientEvent | None) -> Frame:
        event_id = command.event_id if command is not None else self._event_id
        self._event_id = None
        return self._encoded({"type": "error", "error": error_body(error, event_id)}) or ""

    def paced(self, command: object) -> bool:
        return isinstance(command, ev.Append)

    async def open(self, connection: Connection[Frame]) -> None:
        await super().open(connection)
        self.conversation = self.container.conversations.open(
            connection.principal, tell=self._tell, replies=self.config.type == "realtime"
        )
        await self._configure(self.config)
        await self.tell({"type": "session.created", "session": self._session()})
        if self.config.type == "realtime":
            try:
                self.container.responding.check()
            except VoicePipeError as error:  # said once; transcription still works
                await self.tell({"type": "error", "error": error_body(error)})

    async def drain(self, seconds: float) -> None:
        """The utterance in progress gets its transcript; the answer in progress ends (or is
        cancelled when the drain time runs short) with its `response.done`."""
        if self.conversation is not None:
            await self.conversation.finish(seconds - 1.0)

    async def close(self) -> None:
        if self.conversation is not None:
            await self.conversation.close()

    async def tell(self, event: dict[str, Any]) -> None:
        data = self._encoded(event)
        if data is not None:
            await self.send(data)

    def _encoded(self, event: dict[str, Any]) -> str | None:
        kind = event["type"]
        if self.beta and kind in BETA_NAMES:
            renamed = BETA_NAMES[kind]
            if renamed is None:
                return None
            event = {**event, "type": renamed}
        return _encoder.encode({"event_id": "event_" + uuid.uuid4().hex[:20], **event}).decode()

    async def _tell(self, event: ConversationEvent) -> None:
        if isinstance(event, AnswerDropped) and "speculation" not in self.own_events:
            return  # not an OpenAI event: only for clients that ask (`voicepipe_events`)
        for server_event in rendered(event, self.beta):
            await self.tell(server_event)

    def _session(self) -> dict[str, Any]:
        return session_shape(self.config, beta=self.beta, expires_at=self.expires_at)

    async def _configure(self, config: SessionConfig) -> None:
        transcription = config.transcription
        model, language = None, None
        if transcription is not None:  # refused before anything of the update is applied
            asked = None if transcription.model in OPENAI_MODELS else transcription.model
            model, language = choose(self.container.catalog, asked, transcription.language)
        self.config = config
        conversation = self.conversation
        assert conversation is not None
        conversation.defaults = self._options(None)
        hearing = Hearing(
            encoding=config.input_encoding,
            sample_rate=config.rate_of(config.input_format),
            language=language,
            model=model,
            prompt=transcription.prompt if transcription else None,
            noise_reduction=config.noise_reduction,
        )
        await conversation.configure(hearing, config.turn_detection)

    def _options(self, asked: ev.ResponseIn | None) -> ReplyOptions:
        voices = self.container.speech.voices()
        return reply_options(self.config, asked or ev.ResponseIn(), beta=self.beta, voices=voices)

    # Handlers, one per client event

    @HANDLERS.on(ev.SessionUpdate, ev.TranscriptionSessionUpdate)
    async def _update(self, event: ev.SessionUpdate) -> None:
        config = updated(self.config, read(event.session, beta=self.beta))
        voice_of(config.voice, self.container.speech.voices())  # refused now, not at reply
        listen = self.container.listen  # and noise reduction the service cannot do
        noise_mode(listen.denoiser, listen.noise_reduction, config.noise_reduction)
        await self._configure(config)
        transcription = self.beta and config.type == "transcription"
        kind = "transcription_session.updated" if transcription else "session.updated"
        await self.tell({"type": kind, "session": self._session()})

    @HANDLERS.on(ev.Append)
    async def _append(self, event: ev.Append) -> None:
        if len(event.audio) > self.max_append_chars:
            raise InvalidRequest(
                f"one append carries at most {self.max_append_chars} base64 characters; "
                "send audio in smaller chunks"
            )
        try:
            data = binascii.a2b_base64(event.audio, strict_mode=True)
        except (binascii.Error, ValueError) as error:
            raise InvalidRequest("audio is not valid base64") from error
        if not data:
            raise InvalidRequest("audio must be base64-encoded audio bytes")
        await self.talk.hear(data)

    @HANDLERS.on(ev.Commit)
    async def _commit(self, _: ev.Commit) -> None:
        await self.talk.commit()

    @HANDLERS.on(ev.Clear)
    async def _clear(self, _: ev.Clear) -> None:
        self.talk.clear()
        await self.tell({"type": "input_audio_buffer.cleared"})

    @HANDLERS.on(ev.ItemCreate)
    async def _create(self, event: ev.ItemCreate) -> None:
        await self.talk.add(event.item.made(), event.previous_item_id)

    @HANDLERS.on(ev.ItemDelete)
    async def _delete(self, event: ev.ItemDelete) -> None:
        await self.talk.delete(event.item_id)

    @HANDLERS.on(ev.ItemRetrieve)
    async def _retrieve(self, event: ev.ItemRetrieve) -> None:
        item = self.talk.items.get(event.item_id)
        await self.tell({"type": "conversation.item.retrieved", "item": item_shape(item)})

    @HANDLERS.on(ev.ItemTruncate)
    async def _truncate(self, event: ev.ItemTruncate) -> None:
        await self.talk.truncate(event.item_id, event.audio_end_ms)

    @HANDLERS.on(ev.ResponseCreate)
    async def _respond(self, event: ev.ResponseCreate) -> None:
        await self.talk.respond(self._options(event.response))

    @HANDLERS.on(ev.ResponseCancel)
    async def _cancel(self, _: ev.ResponseCancel) -> None:
        if not self.talk.cancel("client_cancelled"):
            raise InvalidRequest("no response is in progress to cancel")

    @HANDLERS.on(ev.OutputAudioClear)
    async def _clear_output(self, _: ev.OutputAudioClear) -> None:
        raise InvalidRequest("output_audio_buffer.clear is for WebRTC connections only")
