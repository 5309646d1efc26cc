"""Use case: answer a conversation turn. A chat model's text streams in; each sentence is spoken
through a speaking session as soon as it is complete; the audio goes out paced to the listener
and stops at once when the user speaks over it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any, Literal

import msgspec

from application.access import Principal, RateLimited
from application.ports import AudioConverter, AudioOutput, Clock, EventLog, LanguageModel
from application.speaking import Speaking, SpeakingSession
from application.stream_speech import StreamChunk, StreamFinished, StreamStarted
from application.tool_calls import (
    ReplyCall,
    ReplyCallArguments,
    ReplyCallDone,
    ToolCalls,
    TooManyCalls,
)
from domain.conversation import ChatTurn, SpokenPiece
from domain.errors import LanguageModelFailed, LanguageModelMissing, TextTooLong, VoicePipeError
from domain.events import DomainEvent, LanguageModelReplied, ReplyInterrupted, VoiceReplied
from domain.tools import Tool, ToolCallDelta, ToolChoice

log = logging.getLogger(__name__)

DELTA_MS = 100  # audio goes out in slices this long...
LEAD_MS = 1000  # ...at most this far ahead of real time: a listener's buffer, and all that is
# wasted (synthesized, sent, never heard) when the user interrupts

Status = Literal["completed", "cancelled", "incomplete", "failed"]


class OutputAudio(msgspec.Struct, frozen=True):
    encoding: str  # pcm_s16le, pcmu or pcma
    rate: int
    voice: str | None = None
    speed: float = 1.0

    @property
    def bytes_per_ms(self) -> int:
        return self.rate * (2 if self.encoding == "pcm_s16le" else 1) // 1000


class ReplyText(msgspec.Struct, frozen=True):
    delta: str


class ReplyAudio(msgspec.Struct, frozen=True):
    data: bytes  # in the output's encoding
    start_ms: float  # where it starts in the answer's audio


class ReplyFinished(msgspec.Struct, frozen=True):
    status: Status
    reason: str | None  # turn_detected, client_cancelled, max_output_tokens
    text: str  # all the model said
    pieces: list[SpokenPiece]  # what was spoken, piece by piece, with where each starts
    audio_ms: float  # audio sent
    code: str | None = None
    message: str | None = None


ReplyEvent = ReplyText | ReplyAudio | ReplyCall | ReplyCallArguments | ReplyCallDone | ReplyFinished
Queued = ReplyText | ReplyAudio | ReplyCall | ReplyCallArguments | ReplyCallDone


class _End(msgspec.Struct, frozen=True):
    part: str  # "text" or "audio"


class Reply:
    """One answer. Iterate `events()` once; `cancel` stops it at once, from any task.

    Rules:
    - Text deltas come as the model sends them; audio (when asked) follows sentence by
      sentence, in slices of DELTA_MS, never more than LEAD_MS ahead of real time.
    - The speaking session charges the characters spoken; an answer longer than the text limit
      stops there (`incomplete`, `max_output_tokens`). When the key's characters run out, the
      model is read no further; what was already paid for is still spoken, then the answer
      fails (`rate_limited`). The chat model's characters are metered, spoken or not.
    - The model's whole answer is bounded in time (`answer_seconds`), not only each read: a
      server that trickles empty chunks fails the answer (`llm_failed`).
    - After `cancel`, no more audio is yielded; `ReplyFinished` comes next and says how much
      was sent. The model stream and the synthesis wind down in the background.
    - A speculative answer (`speculative`, started by `begin` before the user's turn is sure
      to be over) reads the model at once but holds its text: nothing is synthesized, charged
      or metered until `confirm`; one cancelled unconfirmed cost the key nothing.
    """

    def __init__(
        self,
        responding: Responding,
        principal: Principal,
        *,
        turns: Sequence[ChatTurn],
        response_id: str,
        speaking: SpeakingSession | None,
        audio: OutputAudio | None,
        max_tokens: int | None,
        speech_ended_at: float | None,
        tools: Sequence[Tool] = (),
        tool_choice: ToolChoice = "auto",
        speculative: bool = False,
    ) -> None:
        self._r = responding
        self._confirmed = asyncio.Event()
        if not speculative:
            self._confirmed.set()
        self._held: list[str] = []  # text read while speculative, said once confirmed
        self.principal = principal
        self.turns = list(turns)
        self.response_id = response_id
        self._speaking = speaking
        self._audio = audio
        self._max_tokens = max_tokens
        self._speech_ended_at = speech_ended_at
        self._queue: asyncio.Queue[Queued | _End] = asyncio.Queue()
        self._tools = tools
        self._tool_choice = tool_choice
        self._calls = ToolCalls(self._queue.put_nowait)
        self._stop = asyncio.Event()
        self._status: Status = "completed"
        self._reason: str | None = None
        self._error: VoicePipeError | None = None
        self._text: list[str] = []
        self._pieces: list[SpokenPiece] = []
        self._sent_ms = 0.0  # audio made ready (queued)
        self._out_ms = 0.0  # audio handed to the transport: what the listener may have heard
        self._bytes_per_ms = audio.bytes_per_ms if audio is not None else 1
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def cancel(self, reason: str) -> None:
        if self._stop.is_set():
            return
        self._status, self._reason = "cancelled", reason
        self._stop.set()
        if self._speaking is not None:
            self._speaking.cancel()
        self._queue.put_nowait(_End("cancel"))

    @property
    def confirmed(self) -> bool:
        return self._confirmed.is_set()

    def begin(self) -> None:
        """Reads the model now (`events` begins it too)."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._think()))
        if self._speaking is not None:
            self._tasks.append(loop.create_task(self._voice(self._speaking)))

    def drop(self) -> None:
        """A speculation not needed: the model stops at once; nothing was said or charged."""
        self.cancel("dropped")
        for task in self._tasks:
            task.cancel()
        self._r.wind_down(self._tasks, self._speaking)

    def confirm(self, speech_ended_at: float | None) -> None:
        """The turn it answers is over: what was held is said, and paid for, from now."""
        self._speech_ended_at = speech_ended_at
        self._confirmed.set()

    async def events(self) -> AsyncIterator[ReplyEvent]:
        self.begin()
        open_parts = len(self._tasks)
        try:
            while open_parts:
                item = await self._queue.get()
                if isinstance(item, _End):
                    if item.part == "cancel":
                        break
                    open_parts -= 1
                    continue
                if not self.cancelled:
                    if isinstance(item, ReplyAudio):
                        self._out_ms = item.start_ms + len(item.data) / self._bytes_per_ms
                    yield item
            if self.cancelled and self._reason == "turn_detected":
                self._r.record(self.response_id, ReplyInterrupted, audio_ms=round(self._out_ms, 1))
            yield self._finished()
        finally:
            if open_parts:  # stopped early (cancelled, or the client left): stop reading the model
                self._stop.set()
                self._tasks[0].cancel()
                if self._speaking is not None:
                    self._speaking.cancel()
            self._r.wind_down(self._tasks, self._speaking)

    def _finished(self) -> ReplyFinished:
        error = self._error
        return ReplyFinished(
            status=self._status,
            reason=self._reason,
            text="".join(self._text),
            pieces=[p for p in self._pieces if p.start_ms < self._out_ms],
            audio_ms=round(self._out_ms, 1),
            code=error.code if error else None,
            message=error.message if error else None,
        )

    def _fail(
        self,
        status: Status,
        reason: str | None,
        error: VoicePipeError | None,
        *,
        speak_rest: bool = False,
    ) -> None:
        """`speak_rest`: what was already paid for is still said before the answer ends."""
        if self.cancelled:
            return
        self._status, self._reason, self._error = status, reason, error
        if self._speaking is not None and status == "failed" and not speak_rest:
            self._speaking.cancel()

    async def _think(self) -> None:
        model = self._r.model
        assert model is not None
        started = self._r.clock.monotonic()
        first_ms, chars, limit = 0.0, 0, self._r.max_text_chars
        try:
            async with asyncio.timeout(self._r.answer_seconds):
                answer = model.reply(self.turns, self._max_tokens, self._tools, self._tool_choice)
                async for delta in answer:
                    if self.cancelled:
                        break
                    if not first_ms:
                        first_ms = self._r.since_ms(started)
                    size = len(delta if isinstance(delta, str) else delta.arguments)
                    chars += size
                    if sum(map(len, self._text)) + self._calls.chars + size > limit:
                        raise TextTooLong(f"answers are limited to {limit} characters")
                    if isinstance(delta, ToolCallDelta):
                        try:
                            self._calls.add(delta)
                        except TooManyCalls as error:
                            raise TextTooLong(str(error)) from None
                        continue
                    self._calls.close()  # text after a call: the call is complete
                    await self._say(delta)
                    self._text.append(delta)
                    self._queue.put_nowait(ReplyText(delta))
                if not self.cancelled and await self._until_confirmed():
                    await self._say("")
        except TextTooLong:
            self._fail("incomplete", "max_output_tokens", None)
        except RateLimited as error:
            self._fail("failed", None, error, speak_rest=True)
        except TimeoutError:
            seconds = self._r.answer_seconds
            late = LanguageModelFailed(f"the chat model's answer took longer than {seconds:g} s")
            self._fail("failed", None, late)
        except VoicePipeError as error:
            self._fail("failed", None, error)
        finally:
            self._calls.close()
            if self._speaking is not None:
                self._speaking.finish()
            self._r.record(
                self.response_id,
                LanguageModelReplied,
                model=model.model_name,
                first_token_ms=first_ms,
                latency_ms=self._r.since_ms(started),
                chars=chars,
                status=self._status,
            )
            if self.confirmed:  # a dropped speculation is not the key's answer
                self._r.meter(self.principal, chars)
            self._queue.put_nowait(_End("text"))

    async def _say(self, delta: str) -> None:
        """Speaks `delta` (reserved before it is said); held while the answer is speculative."""
        if not self.confirmed:
            self._held.append(delta)
            return
        held, self._held = self._held, []
        if self._speaking is not None:
            for text in (*held, delta):
                if text:
                    await self._speaking.add_text(text)

    async def _until_confirmed(self) -> bool:
        """Waits for `confirm` (or a cancel); True once confirmed."""
        if not self.confirmed:
            waits = {asyncio.ensure_future(e.wait()) for e in (self._confirmed, self._stop)}
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
        return self.confirmed and not self.cancelled

    async def _voice(self, speaking: SpeakingSession) -> None:
        audio = self._audio
        assert audio is not None
        step = audio.bytes_per_ms * DELTA_MS
        output: AudioOutput | None = None
        started_at: float | None = None
        try:
            async for item in speaking.items():
                if self.cancelled:
                    break
                if isinstance(item, StreamStarted):
                    output = self._r.converter.open_output(
                        audio.encoding, item.sample_rate, audio.rate
                    )
                elif isinstance(item, StreamChunk) and output is not None:
                    # A piece is seconds of audio: resampled off the event loop.
                    data = await asyncio.to_thread(output.convert, item.pcm)
                    self._pieces.append(SpokenPiece(round(self._sent_ms, 1), item.text))
                    for at in range(0, len(data), step):
                        started_at = await self._paced(started_at)
                        if self.cancelled:
                            return
                        self._send(data[at : at + step], audio)
                elif isinstance(item, StreamFinished) and output is not None and not self.cancelled:
                    self._send(output.flush(), audio)
        except VoicePipeError as error:
            self._fail("failed", None, error)
        finally:
            self._queue.put_nowait(_End("audio"))

    async def _paced(self, started_at: float | None) -> float:
        """Wait until this slice is at most LEAD_MS ahead of real time (or the reply stops)."""
        now = self._r.clock.monotonic()
        if started_at is None:
            if self._speech_ended_at is not None:
                voice_to_voice = round(1000 * (now - self._speech_ended_at), 1)
                self._r.record(self.response_id, VoiceReplied, voice_to_voice_ms=voice_to_voice)
            return now
        wait = started_at + (self._sent_ms - LEAD_MS) / 1000 - now
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._stop.wait()
        return started_at

    def _send(self, data: bytes, audio: OutputAudio) -> None:
        if not data:
            return
        self._queue.put_nowait(ReplyAudio(data, round(self._sent_ms, 1)))
        self._sent_ms += len(data) / audio.bytes_per_ms


class Responding:
    """Starts answers: the configured chat model, the speaking sessions, the output format."""

    def __init__(
        self,
        *,
        model: LanguageModel | None,
        speaking: Speaking,
        converter: AudioConverter,
        events: EventLog,
        clock: Clock,
        max_text_chars: int,
        answer_seconds: float = 120.0,
    ) -> None:
        self.model = model
        self.answer_seconds = answer_seconds
        self.speaking = speaking
        self.converter = converter
        self.events = events
        self.clock = clock
        self.max_text_chars = max_text_chars
        self._winding: set[asyncio.Task[None]] = set()

    def check(self) -> None:
        if self.model is None:
            raise LanguageModelMissing(
                "conversations need a chat model: set LLM_BASE_URL (and LLM_MODEL, LLM_API_KEY) "
                "to an OpenAI-compatible chat-completions server; transcription sessions work "
                "without one"
            )

    async def start(
        self,
        principal: Principal,
        *,
        turns: Sequence[ChatTurn],
        response_id: str,
        audio: OutputAudio | None,
        max_tokens: int | None = None,
        speech_ended_at: float | None = None,
        transport: str = "realtime",
        tools: Sequence[Tool] = (),
        tool_choice: ToolChoice = "auto",
        speculative: bool = False,
    ) -> Reply:
        """An answer to `turns`; with `audio`, spoken in that format (voice and speed checked
        here, before any work). Refused when the key's chat characters are spent."""
        self.check()
        await self.speaking.access.check_llm(principal)
        speaking = None
        if audio is not None:
            speaking = await self.speaking.open(
                principal,
                pipeline_id=response_id,
                transport=transport,
                voice=audio.voice,
                speed=audio.speed,
            )
        return Reply(
            self,
            principal,
            turns=turns,
            response_id=response_id,
            speaking=speaking,
            audio=audio,
            max_tokens=max_tokens,
            speech_ended_at=speech_ended_at,
            tools=tools,
            tool_choice=tool_choice,
            speculative=speculative,
        )

    def meter(self, principal: Principal, chars: int) -> None:
        """The chat model's characters, counted for the key (spoken or not)."""
        if chars:
            self._background(self._meter(principal, chars))

    async def _meter(self, principal: Principal, chars: int) -> None:
        try:
            await self.speaking.access.add_llm(principal, chars)
        except Exception:
            log.exception("metering the chat model's characters failed")

    def since_ms(self, start: float) -> float:
        return round(1000 * (self.clock.monotonic() - start), 1)

    def record(self, response_id: str, event_type: type[DomainEvent], **fields: Any) -> None:
        event = event_type(pipeline_id=response_id, occurred_at=self.clock.now(), **fields)
        self._background(self._append(event))

    def wind_down(self, tasks: list[asyncio.Task[None]], speaking: SpeakingSession | None) -> None:
        """Let a finished or cancelled answer's tasks end, then record its speech events."""
        self._background(self._wind_down(tasks, speaking))

    async def _wind_down(
        self, tasks: list[asyncio.Task[None]], speaking: SpeakingSession | None
    ) -> None:
        await asyncio.gather(*tasks, return_exceptions=True)
        if speaking is not None:
            await speaking.close()

    async def _append(self, event: DomainEvent) -> None:
        try:
            await self.events.append([event])
        except Exception:
            log.exception("event log append failed")

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._winding.add(task)
        task.add_done_callback(self._winding.discard)
