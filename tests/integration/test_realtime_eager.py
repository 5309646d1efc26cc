"""semantic_vad conversations begin their answer at the likely end of the user's turn (the
official SDK, a real server, real models, a fake chat server that answers at once)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.integration import test_realtime_api as realtime
from tests.integration.conftest import RunningServer
from tests.integration.fake_llm import FakeLLM
from tests.integration.test_realtime_api import (
    ANSWER,
    QUESTION,
    append,
    client,
    silence,
    speech_pcm,
    until,
)

agent, llm = realtime.agent, realtime.llm  # the module's fixtures: a service with a chat model


def speculated(server: RunningServer) -> dict[str, int]:
    stats = httpx.get(f"{server.url}/stats", timeout=10).json()
    return dict(stats["realtime"]["speculative_answers"])


async def test_a_finished_question_is_answered_from_its_likely_end_once(
    agent: RunningServer, llm: FakeLLM
) -> None:
    before, asked = speculated(agent), len(llm.requests)
    async with client(agent).realtime.connect(model="gpt-realtime") as connection:
        seen: list[Any] = []
        detection = {"type": "semantic_vad", "eagerness": "low"}
        session: Any = {"type": "realtime", "audio": {"input": {"turn_detection": detection}}}
        await connection.session.update(session=session)
        await until(connection, "session.updated", seen)
        await append(connection, silence(300) + speech_pcm(QUESTION))
        for _ in range(12):  # then silence in real time, as a microphone sends it
            await append(connection, silence(100))
            await asyncio.sleep(0.1)
        done = await until(connection, "response.done", seen)
    assert done.response.status == "completed"
    assert done.response.output[0].content[0].transcript == ANSWER
    after = speculated(agent)
    used = after["used"] - before["used"]
    dropped = after["dropped"] - before["dropped"]
    assert used == 1  # begun at the likely end, and that was the end
    assert len(llm.requests) == asked + 1 + dropped  # the model is asked once per answer
    kinds = [e.type for e in seen]
    assert kinds.count("response.created") == 1  # a speculation is never shown to the client
