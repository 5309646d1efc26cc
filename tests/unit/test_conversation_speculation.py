"""A conversation's speculative answers through its listening session (fake models): begun
at each likely end of the user's turn, dropped when the user goes on, used when the turn
ends with the same words, and told to the client once, as one answer."""

from __future__ import annotations

import asyncio
from typing import Any

from application.conversation_events import (
    AnswerDropped,
    ConversationEvent,
    ReplyDone,
    ReplyStarted,
)
from application.conversation_session import Conversations, Hearing, ReplyOptions
from application.replying import OutputAudio, Responding
from domain.events import AnswerSpeculated, LanguageModelReplied
from domain.turn_taking import TurnDetection
from entrypoints.settings import Settings
from tests.unit.conftest import build_world
from tests.unit.fakes import FakeConverter
from tests.unit.stream_fakes import FakeTurns, silence, speech
from tests.unit.test_replying import KEY, FakeModel, RealClock

UNSURE = 0.6  # over `low`'s eager threshold (0.5), under its end of turn (0.7)


async def heard(session: Any, pcm: bytes, frame: int = 1024) -> None:
    for at in range(0, len(pcm), frame):
        await session.hear(pcm[at : at + frame])
        for _ in range(20):
            await asyncio.sleep(0)


async def test_the_user_going_on_drops_the_answer_begun_and_the_end_uses_the_next() -> None:
    world = build_world(Settings(max_text_chars=400, api_keys=(KEY,), tts_chars_per_day=10_000))
    world.container.listen.turns = FakeTurns(UNSURE)
    model = FakeModel("Sure, here it is.")
    responding = Responding(
        model=model,
        speaking=world.container.speaking,
        converter=FakeConverter(),
        events=world.events,
        clock=RealClock(),
        max_text_chars=400,
    )
    told: list[ConversationEvent] = []

    async def tell(event: ConversationEvent) -> None:
        told.append(event)

    principal = world.container.access.authenticate(KEY)
    conversations = Conversations(
        responding=responding,
        listen=world.container.listen,
        access=world.container.access,
        clock=RealClock(),
    )
    session = conversations.open(principal, tell=tell, replies=True)
    session.defaults = ReplyOptions(audio=OutputAudio("pcm_s16le", 16_000))
    await session.configure(Hearing(sample_rate=16_000), TurnDetection().semantic("low"))

    await heard(session, silence(320) + speech(640) + silence(480))  # a likely end
    assert len(model.asked) == 1 and session.speculation.pending
    assert not any(isinstance(e, ReplyStarted) for e in told)  # not shown, not said
    assert world.synthesizer.spoken == []
    await heard(session, speech(640))  # the user goes on: dropped
    assert not session.speculation.pending
    assert [e for e in told if isinstance(e, AnswerDropped)] == [AnswerDropped("hello world")]
    await heard(session, silence(480))  # likely again: begun again
    assert len(model.asked) == 2 and session.speculation.pending
    await heard(session, silence(8_200))  # the turn model's longest wait: the end
    for _ in range(100):
        if any(isinstance(e, ReplyDone) for e in told):
            break
        await asyncio.sleep(0.02)
    await session.close()
    await asyncio.sleep(0.05)

    assert len(model.asked) == 2  # the end used the answer begun, no third call
    assert [type(e) for e in told].count(ReplyStarted) == 1
    done = next(e for e in told if isinstance(e, ReplyDone))
    assert done.status == "completed" and done.outputs[0].text == model.answer
    recorded = await world.recorded()
    speculated = [e.used for e in recorded if isinstance(e, AnswerSpeculated)]
    assert speculated == [False, True]
    replied = [e.status for e in recorded if isinstance(e, LanguageModelReplied)]
    assert sorted(replied) == ["cancelled", "completed"]
    usage = await world.container.access.usage(principal)
    assert usage.llm_characters.used == len(model.answer)  # the dropped one cost nothing
