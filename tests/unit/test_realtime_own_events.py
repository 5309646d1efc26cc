"""The Realtime dialect tells this server's own events (`voicepipe.*`) only to clients that
ask for them with `voicepipe_events`: OpenAI's clients see OpenAI's events only."""

from __future__ import annotations

import json

from application.conversation_events import AnswerDropped
from entrypoints.realtime.dialect import RealtimeDialect
from tests.unit.conftest import build_world


async def told(own_events: frozenset[str]) -> list[dict[str, object]]:
    world = build_world()
    dialect = RealtimeDialect(
        world.container, beta=False, kind="realtime", model=None, own_events=own_events
    )
    sent: list[dict[str, object]] = []

    async def send(frame: str | bytes) -> None:
        sent.append(json.loads(frame))

    dialect.send = send  # type: ignore[method-assign]
    await dialect._tell(AnswerDropped("book a table"))
    return sent


async def test_a_dropped_answer_is_told_only_when_asked() -> None:
    assert await told(frozenset()) == []
    [event] = await told(frozenset({"speculation"}))
    assert event["type"] == "voicepipe.speculation.dropped"
    assert event["transcript"] == "book a table"
