"""Answers of a conversation: text as the model streams it, speech sentence by sentence,
paced, stopped at once, charged for what is spoken."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import pytest

from application.replying import (
    LEAD_MS,
    OutputAudio,
    Reply,
    ReplyAudio,
    ReplyFinished,
    ReplyText,
    Responding,
)
from application.tool_calls import ReplyCall, ReplyCallArguments, ReplyCallDone
from domain.conversation import ChatTurn
from domain.errors import LanguageModelFailed, LanguageModelMissing
from domain.events import DomainEvent, LanguageModelReplied, ReplyInterrupted, VoiceReplied
from domain.tools import Tool, ToolCallDelta, ToolChoice
from entrypoints.settings import Settings
from tests.unit.conftest import FakeWorld, build_world
from tests.unit.fakes import FakeConverter

KEY = "alice-secret"
AUDIO = OutputAudio(encoding="pcm_s16le", rate=16_000)  # the fakes speak 16 kHz


class FakeModel:
    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.fail = False
        self.asked: list[list[ChatTurn]] = []
        self.calls: list[ToolCallDelta] = []  # streamed before the text
        self.delay = 0.0  # seconds between words
        self.offered: list[tuple[Sequence[Tool], ToolChoice]] = []

    @property
    def model_name(self) -> str:
        return "fake-llm"

    async def reply(
        self,
        turns: Sequence[ChatTurn],
        max_tokens: int | None,
        tools: Sequence[Tool] = (),
        tool_choice: ToolChoice = "auto",
    ) -> AsyncIterator[str | ToolCallDelta]:
        self.asked.append(list(turns))
        self.offered.append((tools, tool_choice))
        if self.fail:
            raise LanguageModelFailed("the chat model answered HTTP 500 (LLM_BASE_URL)")
        for call in self.calls:
            yield call
        if not self.answer:
            return
        for index, word in enumerate(self.answer.split(" ")):
            yield word if index == 0 else " " + word
            await asyncio.sleep(self.delay)


class RealClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


def world_with(
    model: FakeModel | None, chars_per_day: int = 10_000
) -> tuple[FakeWorld, Responding]:
    world = build_world(
        Settings(max_text_chars=400, api_keys=(KEY,), tts_chars_per_day=chars_per_day)
    )
    responding = Responding(
        model=model,
        speaking=world.container.speaking,
        converter=FakeConverter(),
        events=world.events,
        clock=RealClock(),
        max_text_chars=400,
    )
    return world, responding


async def start(
    world: FakeWorld, responding: Responding, audio: OutputAudio | None, ended: float | None = None
) -> Reply:
    principal = world.container.access.authenticate(KEY)
    return await responding.start(
        principal,
        turns=[ChatTurn("user", "Hello?")],
        response_id="resp_1",
        audio=audio,
        speech_ended_at=ended,
    )


async def recorded(world: FakeWorld) -> list[DomainEvent]:
    await asyncio.sleep(0.05)  # events are appended as the answer winds down
    return await world.recorded()


async def test_a_text_answer_streams_the_models_words() -> None:
    model = FakeModel("Hello there. How can I help?")
    world, responding = world_with(model)
    reply = await start(world, responding, None)
    events = [event async for event in reply.events()]
    assert "".join(e.delta for e in events if isinstance(e, ReplyText)) == model.answer
    done = events[-1]
    assert isinstance(done, ReplyFinished) and (done.status, done.text) == (
        "completed",
        model.answer,
    )
    assert world.synthesizer.spoken == []  # nothing spoken, nothing charged
    replied = [e for e in await recorded(world) if isinstance(e, LanguageModelReplied)]
    assert [(e.model, e.chars, e.status) for e in replied] == [("fake-llm", 28, "completed")]


async def test_a_spoken_answer_says_each_sentence_and_maps_audio_to_text() -> None:
    model = FakeModel("Hello there. How can I help?")
    world, responding = world_with(model)
    reply = await start(world, responding, AUDIO, ended=time.monotonic() - 0.2)
    events = [event async for event in reply.events()]
    audio = [e for e in events if isinstance(e, ReplyAudio)]
    done = events[-1]
    assert isinstance(done, ReplyFinished) and done.status == "completed"
    assert [text for text, _ in world.synthesizer.spoken] == ["Hello there.", "How can I help?"]
    # 100 ms of fake speech, a 250 ms pause, 100 ms more: in 100 ms slices, timed in order.
    assert done.audio_ms == pytest.approx(450.0)
    assert [a.start_ms for a in audio] == [0.0, 100.0, 200.0, 300.0, 400.0]
    assert [(p.start_ms, p.text) for p in done.pieces] == [
        (0.0, "Hello there."),
        (100.0, "How can I help?"),
    ]
    voiced = [e for e in await recorded(world) if isinstance(e, VoiceReplied)]
    assert len(voiced) == 1 and voiced[0].voice_to_voice_ms >= 200


async def test_cancel_stops_the_audio_at_once_and_says_what_was_sent() -> None:
    model = FakeModel(" ".join(f"Sentence {n} is here." for n in range(1, 30)))
    world, responding = world_with(model)
    reply = await start(world, responding, AUDIO)
    events = reply.events()
    sent: list[ReplyAudio] = []
    while len(sent) < 3:
        event = await anext(events)
        if isinstance(event, ReplyAudio):
            sent.append(event)
    reply.cancel("turn_detected")
    rest = [event async for event in events]
    assert len(rest) == 1 and isinstance(rest[0], ReplyFinished)
    done = rest[0]
    assert (done.status, done.reason) == ("cancelled", "turn_detected")
    assert done.audio_ms == pytest.approx(300.0)
    assert [p.text for p in done.pieces] == ["Sentence 1 is here.", "Sentence 2 is here."]
    assert any(isinstance(e, ReplyInterrupted) and e.audio_ms == 300 for e in await recorded(world))
    assert len(world.synthesizer.spoken) < 10  # the rest was never synthesized


async def test_audio_goes_out_at_most_the_lead_ahead_of_real_time() -> None:
    model = FakeModel(" ".join(f"Sentence {n} is here." for n in range(1, 30)))
    world, responding = world_with(model)
    reply = await start(world, responding, AUDIO)
    sent_ms = 0.0
    started: float | None = None

    async def listen() -> None:
        nonlocal sent_ms, started
        async for event in reply.events():
            if isinstance(event, ReplyAudio):
                started = started or time.monotonic()
                sent_ms = event.start_ms + 100

    task = asyncio.create_task(listen())
    await asyncio.sleep(0.6)
    assert started is not None
    elapsed_ms = 1000 * (time.monotonic() - started)
    assert LEAD_MS <= sent_ms <= LEAD_MS + elapsed_ms + 100
    reply.cancel("client_cancelled")
    await task


async def test_an_answer_over_the_text_limit_stops_there() -> None:
    model = FakeModel("word " * 200)
    world, responding = world_with(model)
    reply = await start(world, responding, None)
    done = [event async for event in reply.events()][-1]
    assert isinstance(done, ReplyFinished)
    assert (done.status, done.reason) == ("incomplete", "max_output_tokens")
    assert len(done.text) <= 400


async def test_spoken_characters_are_charged_and_the_quota_stops_the_answer() -> None:
    """20 characters a day: "One two three. Four" fits; what was paid for is still said,
    then the answer fails, and the model was read no further."""
    model = FakeModel("One two three. Four five six. Seven eight nine.")
    world, responding = world_with(model, chars_per_day=20)
    reply = await start(world, responding, AUDIO)
    events = [event async for event in reply.events()]
    done = events[-1]
    assert isinstance(done, ReplyFinished)
    assert (done.status, done.code) == ("failed", "rate_limited")
    assert [text for text, _ in world.synthesizer.spoken] == ["One two three.", "Four"]
    assert done.text == "One two three. Four"
    assert any(isinstance(event, ReplyAudio) for event in events)


async def test_a_failing_model_fails_the_answer_and_a_missing_one_refuses_it() -> None:
    model = FakeModel("Hi.")
    model.fail = True
    world, responding = world_with(model)
    reply = await start(world, responding, AUDIO)
    done = [event async for event in reply.events()][-1]
    assert isinstance(done, ReplyFinished) and (done.status, done.code) == ("failed", "llm_failed")
    world, responding = world_with(None)
    with pytest.raises(LanguageModelMissing, match="LLM_BASE_URL"):
        await start(world, responding, None)


async def test_tool_calls_are_metered_and_bounded_but_never_spoken() -> None:
    model = FakeModel("")
    model.calls = [ToolCallDelta(0, "c1", "lookup", '{"q": "weather"}')]
    world, responding = world_with(model)
    reply = await start(world, responding, AUDIO)
    events = [event async for event in reply.events()]
    assert [type(e) for e in events] == [
        ReplyCall,
        ReplyCallArguments,
        ReplyCallDone,
        ReplyFinished,
    ]
    assert world.synthesizer.spoken == []  # a call is not said, so no speech is charged
    replied = [e for e in await recorded(world) if isinstance(e, LanguageModelReplied)]
    assert [e.chars for e in replied] == [len('{"q": "weather"}')]  # the model's output

    model.calls = [ToolCallDelta(0, "c2", "lookup", "x" * 500)]  # over the 400 characters
    reply = await start(world, responding, None)
    done = [event async for event in reply.events()][-1]
    assert isinstance(done, ReplyFinished) and (done.status, done.reason) == (
        "incomplete",
        "max_output_tokens",
    )


async def test_a_speculative_answer_is_not_said_nor_charged_until_confirmed() -> None:
    model = FakeModel("Hello there. How can I help?")
    world, responding = world_with(model)
    principal = world.container.access.authenticate(KEY)
    reply = await responding.start(
        principal, turns=[ChatTurn("user", "Hi")], response_id="r1", audio=AUDIO, speculative=True
    )
    reply.begin()
    await asyncio.sleep(0.05)  # the model has answered; the answer waits
    assert len(model.asked) == 1 and world.synthesizer.spoken == []
    held = await world.container.access.usage(principal)
    assert (held.tts_characters.used, held.llm_characters.used) == (0, 0)
    reply.confirm(time.monotonic())
    events = [event async for event in reply.events()]
    assert "".join(e.delta for e in events if isinstance(e, ReplyText)) == model.answer
    assert [text for text, _ in world.synthesizer.spoken] == ["Hello there.", "How can I help?"]
    done = events[-1]
    assert isinstance(done, ReplyFinished) and done.status == "completed"
    replied = [e for e in await recorded(world) if isinstance(e, LanguageModelReplied)]
    assert [e.chars for e in replied] == [len(model.answer)]
    used = await world.container.access.usage(principal)
    assert used.llm_characters.used == len(model.answer)  # metered once confirmed
    assert used.tts_characters.used > 0


async def test_a_dropped_speculation_stops_the_model_and_costs_the_key_nothing() -> None:
    model = FakeModel(" ".join(["word"] * 60))
    model.delay = 0.01  # still streaming when dropped
    world, responding = world_with(model)
    principal = world.container.access.authenticate(KEY)
    before = await world.container.access.usage(principal)
    reply = await responding.start(
        principal, turns=[ChatTurn("user", "Hi")], response_id="r2", audio=AUDIO, speculative=True
    )
    reply.begin()
    await asyncio.sleep(0.01)
    reply.drop()
    await asyncio.sleep(0.05)  # wound down
    assert world.synthesizer.spoken == []
    assert await world.container.access.usage(principal) == before  # nothing reserved or metered
    replied = [e for e in await recorded(world) if isinstance(e, LanguageModelReplied)]
    assert [e.status for e in replied] == ["cancelled"]
