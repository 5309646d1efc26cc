"""Use case: a voice conversation. Items in order (bounded), the user's turns from a listening
session, answers from the chat model spoken through a speaking session, barge-in, truncation
and cancellation. A protocol renders its events; none keeps conversation state of its own."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from application.access import Access, Principal
from application.answering import Answer
from application.conversation_events import (
    AnswerDropped,
    ConversationFailed,
    ItemAdded,
    ItemDeleted,
    ItemDone,
    ItemTruncated,
    Tell,
)
from application.listening_session import ListeningSession, StartListening
from application.ports import Clock
from application.replying import OutputAudio, Reply, Responding
from application.speculation import Speculation
from application.user_turns import UserTurn, UserTurns
from domain.conversation import ChatTurn, Conversation, Item
from domain.errors import InvalidRequest, VoicePipeError
from domain.tools import Tool, ToolChoice
from domain.turn_taking import TurnDetection


class ConversationLimits(msgspec.Struct, frozen=True):
    max_items: int = 200
    max_chars: int = 200_000  # all items' text together
    history_chars: int = 32_000  # the newest items that fit go to the model


class Hearing(msgspec.Struct, frozen=True):
    """How the user's audio comes in: a change starts a new listening session."""

    encoding: str = "pcm_s16le"
    sample_rate: int = 24_000
    language: str | None = None  # None: detected (a multilingual model) or the model's own
    model: str | None = None  # the speech model (application/model_choice.py); None: default
    prompt: str | None = None  # context for the transcription
    noise_reduction: str | None = None  # off, near_field, far_field; None: the service's


class ReplyOptions(msgspec.Struct, frozen=True):
    instructions: str = ""
    audio: OutputAudio | None = None  # None: a text answer
    max_tokens: int | None = None
    in_conversation: bool = True  # False: out of band, not added to the items
    tag: Any = None  # handed back in ReplyStarted / ReplyDone, for the protocol to render
    tools: tuple[Tool, ...] = ()  # checked (domain.tools) before they get here
    tool_choice: ToolChoice = "auto"


class ConversationSession:
    """One conversation.

    Rules:
    - Items are bounded per session in count and in characters, whatever the protocol: past
      either bound the oldest go (as a model's context drops them).
    - One answer at a time. A finished user turn with text starts one when the turn policy
      says so (`create_response`); speech that starts cancels the answer in progress when it
      says so (`interrupt_response`, barge-in).
    - An answer's assistant item keeps what was spoken: a cancelled one only the sentences
      whose audio was sent; `truncate` keeps the sentences heard by a point.
    - The user's audio goes to one listening session at a time, opened on the first audio
      with the conversation's hearing and turn detection (none: the client commits turns);
      new settings finish the one in progress and take effect with the next audio.
    - `replies` False (a transcription session): items come only from speech; no answers.
    - With an automatic answer due, a likely end of the user's turn begins it speculatively
      (the model reads at once; nothing is said or charged): the confirmed turn with the same
      words goes on with it, anything else drops it.
    """

    def __init__(
        self,
        *,
        responding: Responding,
        listen: StartListening,
        access: Access,
        principal: Principal,
        tell: Tell,
        monotonic: Callable[[], float],
        replies: bool,
        limits: ConversationLimits | None = None,
    ) -> None:
        self.responding = responding
        self.listen = listen
        self.access = access
        self.principal = principal
        self.tell = tell
        self.monotonic = monotonic
        self.replies = replies
        self.limits = limits or ConversationLimits()
        self.items = Conversation(self.limits.max_items, self.limits.max_chars)
        self.turn_detection: TurnDetection | None = TurnDetection()
        self.hearing = Hearing()
        self.defaults = ReplyOptions()  # what an automatic answer is like
        self.listening: ListeningSession | None = None
        self._heard_with: tuple[Hearing, TurnDetection | None] | None = None
        self.closing = False  # the server is draining: no new answers
        self.reply: Reply | None = None
        self.task: asyncio.Task[None] | None = None
        self._starting = False  # a start awaits the speaking session: still one at a time
        self.speculation = Speculation(responding)

    @property
    def active(self) -> bool:
        return self._starting or (self.task is not None and not self.task.done())

    # The user's audio

    async def configure(self, hearing: Hearing, turn_detection: TurnDetection | None) -> None:
        self.hearing, self.turn_detection = hearing, turn_detection
        if self._heard_with not in (None, (hearing, turn_detection)):
            await self.stop_listening(finish=True)

    async def hear(self, audio: bytes) -> None:
        await (self.listening or self._listen()).feed(audio)

    async def commit(self) -> None:
        """The client ends the user's turn (manual turns, or ahead of voice activity)."""
        if self.listening is None or not await self.listening.end_utterance():
            raise InvalidRequest("the input audio buffer is empty: append audio before committing")

    def clear(self) -> None:
        if self.listening is not None:
            self.listening.clear()

    async def stop_listening(self, *, finish: bool) -> None:
        session, self.listening, self._heard_with = self.listening, None, None
        if session is not None:
            await session.stop(finish=finish)

    def _listen(self) -> ListeningSession:
        hearing, turn = self.hearing, self.turn_detection
        turns = UserTurns(
            items=self.items,
            tell=self.tell,
            on_speech=self._barge_in,
            on_turn=self._user_turn,
            monotonic=self.monotonic,
            announce_stops=turn is not None,
            trimmed=self._trimmed,
            on_likely_end=self._likely_end,
            on_resumed=self._resumed,
        )
        self.listening = self.listen.open(
            stream_id="conv-" + uuid.uuid4().hex[:12],
            encoding=hearing.encoding,
            sample_rate=hearing.sample_rate,
            language=hearing.language,
            principal=self.principal,
            emit=turns.heard,
            transport="realtime",
            policy=turn.endpointing() if turn is not None else None,
            manual=turn is None,
            prompt=hearing.prompt,
            noise_reduction=hearing.noise_reduction,
            model=hearing.model,
        )
        self._heard_with = (hearing, turn)
        return self.listening

    # Items

    async def add(self, item: Item, previous_item_id: str | None) -> None:
        if not self.replies:
            raise InvalidRequest("transcription sessions take audio, not conversation items")
        previous = self.items.add(item, previous_item_id)
        await self.tell(ItemAdded(item, previous))
        await self.tell(ItemDone(item, previous))
        await self._trimmed()

    async def delete(self, item_id: str) -> None:
        self.items.delete(item_id)
        await self.tell(ItemDeleted(item_id))

    async def truncate(self, item_id: str, audio_end_ms: int) -> None:
        item = self.items.get(item_id)
        if item.role != "assistant" or not item.audio:
            raise InvalidRequest("only an assistant's audio item can be truncated")
        if not 0 <= audio_end_ms <= item.audio_ms:
            raise InvalidRequest(
                f"audio_end_ms must be an integer from 0 to the item's {item.audio_ms:.0f} ms"
            )
        item.truncate(audio_end_ms)
        await self.tell(ItemTruncated(item.id, audio_end_ms))

    # Answers

    async def respond(self, options: ReplyOptions, speech_ended_at: float | None = None) -> None:
        if not self.replies:
            raise InvalidRequest("transcription sessions do not create responses")
        if self.closing:
            raise InvalidRequest("the server is shutting down; reconnect shortly")
        if self.active:
            raise InvalidRequest(
                "a response is in progress; cancel it (response.cancel) or wait for response.done"
            )
        self.speculation.drop()
        await self._tell_dropped()
        self._starting = True
        try:
            reply = await self._start(options, speech_ended_at)
        finally:
            self._starting = False
        self._run(reply, options)

    async def _start(
        self, options: ReplyOptions, speech_ended_at: float | None, said: str | None = None
    ) -> Reply:
        """`said`: the user's words heard at a likely end of turn, not yet an item."""
        turns = self.items.turns(options.instructions, self.limits.history_chars)
        return await self.responding.start(
            self.principal,
            turns=[*turns, ChatTurn("user", said)] if said is not None else turns,
            response_id="resp_" + uuid.uuid4().hex[:20],
            audio=options.audio,
            max_tokens=options.max_tokens,
            speech_ended_at=speech_ended_at,
            tools=options.tools,
            tool_choice=options.tool_choice,
            speculative=said is not None,
        )

    def _run(self, reply: Reply, options: ReplyOptions) -> None:
        self.reply = reply
        self.task = asyncio.get_running_loop().create_task(self._answer(reply, options))

    def cancel(self, reason: str) -> bool:
        if self.reply is None or not self.active:
            return False
        self.reply.cancel(reason)
        return True

    async def finish(self, seconds: float) -> None:
        """The utterance in progress gets its transcript; the answer in progress ends within
        `seconds`, else is cancelled (it still ends with its ReplyDone)."""
        self.closing = True
        self.speculation.drop()
        started = self.monotonic()
        await self.stop_listening(finish=True)
        seconds -= self.monotonic() - started
        if self.task is None:
            return
        done, _ = await asyncio.wait({self.task}, timeout=max(0.0, seconds))
        if not done:
            self.cancel("server_shutdown")
            with contextlib.suppress(Exception):
                await self.task

    async def close(self) -> None:
        self.speculation.drop()
        self.cancel("client_left")
        if self.task is not None:
            self.task.cancel()
        await self.stop_listening(finish=False)

    async def _answer(self, reply: Reply, options: ReplyOptions) -> None:
        answer = Answer(
            reply,
            items=self.items,
            tell=self.tell,
            trimmed=self._trimmed,
            spoken=options.audio is not None,
            in_conversation=options.in_conversation,
            tag=options.tag,
        )
        await answer.run()

    async def _trimmed(self) -> None:
        """Items the bounds dropped: the client hears of each, as of a deletion."""
        dropped, self.items.dropped = self.items.dropped, []
        for item_id in dropped:
            await self.tell(ItemDeleted(item_id))

    # Turns

    def _barge_in(self) -> None:
        turn = self.turn_detection
        if turn is not None and turn.interrupt_response:
            self.cancel("turn_detected")

    async def _resumed(self) -> None:
        self.speculation.drop()
        await self._tell_dropped()

    async def _tell_dropped(self) -> None:
        dropped, self.speculation.dropped = self.speculation.dropped, []
        for said in dropped:
            await self.tell(AnswerDropped(said))

    def _answers_by_itself(self) -> bool:
        detection = self.turn_detection
        return self.replies and detection is not None and detection.create_response

    async def _likely_end(self, said: str) -> None:
        """The user's turn is likely over: the answer begins, held until it is."""
        if not self._answers_by_itself() or self.active or self.closing or not said.strip():
            return
        if not self.speculation.allowed:
            return  # this turn began enough: its end answers it
        try:
            self.speculation.hold(said, await self._start(self.defaults, None, said))
        except VoicePipeError:
            return  # the confirmed turn asks again, and says why
        await self._tell_dropped()

    async def _user_turn(self, turn: UserTurn) -> None:
        if not self._answers_by_itself() or not turn.item.text.strip():
            self.speculation.turn_over()
            await self._tell_dropped()
            return  # nothing was said: no answer
        try:
            await self.access.admit_request(self.principal)
            if self.active or self.closing:
                self.speculation.turn_over()
            elif (begun := self.speculation.take(turn.item.text)) is not None:
                begun.confirm(turn.speech_ended_at)
                self._run(begun, self.defaults)
                return
            await self._tell_dropped()
            await self.respond(self.defaults, turn.speech_ended_at)
        except VoicePipeError as error:
            self.speculation.turn_over()
            await self._tell_dropped()
            await self.tell(ConversationFailed(error))


class Conversations:
    """Opens conversations on the shared chat model, speech, limits and clock."""

    def __init__(
        self,
        *,
        responding: Responding,
        listen: StartListening,
        access: Access,
        clock: Clock,
        limits: ConversationLimits | None = None,
    ) -> None:
        self.responding = responding
        self.listen = listen
        self.access = access
        self.clock = clock
        self.limits = limits or ConversationLimits()

    def open(self, principal: Principal, *, tell: Tell, replies: bool) -> ConversationSession:
        """`replies` False: a transcription session (speech in, no answers)."""
        return ConversationSession(
            responding=self.responding,
            listen=self.listen,
            access=self.access,
            principal=principal,
            tell=tell,
            monotonic=self.clock.monotonic,
            replies=replies,
            limits=self.limits,
        )
