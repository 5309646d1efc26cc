"""Realtime conversations against a hostile keyed client (issue 25): a session's items are
bounded, transcription sessions take no items, an answer charges only the speech it made
(and still says what was paid for when the quota runs out), and a chat model that never
finishes cannot hold an answer, or the connection, open forever."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from entrypoints.bootstrap import Container
from entrypoints.settings import Settings
from tests.integration.conftest import RunningServer, sharing_models
from tests.integration.fake_llm import FakeLLM

KEY = "conversation-limits-k3y-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
ITEM_CHARS = 20_000  # the most one item's text may have


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM("Fine, thanks. And you?") as fake:
        yield fake


@pytest.fixture
def fresh_llm(llm: FakeLLM) -> Iterator[FakeLLM]:
    """The module's chat model, its answer and modes put back after the test."""
    answer = llm.answer
    try:
        yield llm
    finally:
        llm.answer, llm.token_delay, llm.fail, llm.trickle = answer, 0.0, False, 0.0


def serve(container: Container, llm: FakeLLM, **settings: Any) -> RunningServer:
    """A keyed service of its own (its own quotas), with `llm` as its chat model."""
    built = Settings(llm_base_url=llm.url, api_keys=(KEY,), **settings)
    return RunningServer(sharing_models(container, built))


def ws_url(server: RunningServer, query: str = "model=gpt-realtime") -> str:
    return f"ws://127.0.0.1:{server.port}/v1/realtime?{query}"


async def next_of(socket: Any, *kinds: str, wait: float = 30) -> dict[str, Any]:
    """The next event of one of `kinds` (others are skipped); fails after `wait` seconds."""
    event = await within(socket, *kinds, wait=wait)
    assert event is not None, f"no {' or '.join(kinds)} within {wait:g} s"
    return event


async def within(socket: Any, *kinds: str, wait: float) -> dict[str, Any] | None:
    """The next event of one of `kinds`, or None if none comes within `wait` seconds."""
    try:
        async with asyncio.timeout(wait):
            while True:
                event = json.loads(await socket.recv())
                if event["type"] in kinds:
                    return event  # type: ignore[no-any-return]
    except TimeoutError:
        return None


async def send(socket: Any, event: dict[str, Any]) -> None:
    await socket.send(json.dumps(event))


def user_text(text: str) -> dict[str, Any]:
    return {"type": "conversation.item.create", "item": {"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": text}]}}  # fmt: skip


async def test_conversation_items_are_bounded_oldest_dropped_first(
    container: Container, llm: FakeLLM
) -> None:
    """15 items of 20,000 characters (300,000) on one connection: the session keeps at most
    200,000 characters of items (CONVERSATION_MAX_CHARS), dropping the oldest first, as a
    model's context does; the old code kept every item (up to 1000 of 20,000 characters)."""
    count = 15
    with serve(container, llm) as server:
        async with websockets.connect(ws_url(server), additional_headers=AUTH) as socket:
            await next_of(socket, "session.created")
            ids, deleted = [], []
            for index in range(count):
                text = f"{index:02d} " + "w" * (ITEM_CHARS - 3)
                await send(socket, user_text(text))
                added = await next_of(socket, "conversation.item.added", "error")
                assert added["type"] == "conversation.item.added", added
                await next_of(socket, "conversation.item.done")
                ids.append(added["item"]["id"])
                if index >= 10:  # past 200,000 characters: the oldest is dropped, and said so
                    gone = await next_of(socket, "conversation.item.deleted")
                    deleted.append(gone["item_id"])
            kept: dict[str, str] = {}
            answers = []
            for item_id in ids:
                await send(socket, {"type": "conversation.item.retrieve", "item_id": item_id})
                answer = await next_of(socket, "conversation.item.retrieved", "error")
                answers.append(answer["type"])
                if answer["type"] == "conversation.item.retrieved":
                    kept[item_id] = answer["item"]["content"][0]["text"]
                else:
                    assert answer["error"]["code"] == "invalid_request", answer
    assert answers[0] == "error", "the oldest item was kept past the bound"
    assert answers[-1] == "conversation.item.retrieved" and kept[ids[-1]].startswith("14 ")
    dropped = answers.index("conversation.item.retrieved")
    assert answers == ["error"] * dropped + ["conversation.item.retrieved"] * (count - dropped)
    assert list(kept) == ids[dropped:]  # the newest are the ones kept
    assert deleted == ids[:dropped]  # each drop was told as a deletion
    assert sum(map(len, kept.values())) <= 200_000


async def test_transcription_sessions_refuse_conversation_items(
    container: Container, llm: FakeLLM
) -> None:
    """A transcription session (speech in, no answers) takes no conversation items: an item
    is an `invalid_request` error, and the session goes on (the old code stored them)."""
    with serve(container, llm) as server:
        url = ws_url(server, "intent=transcription")
        async with websockets.connect(url, additional_headers=AUTH) as socket:
            created = await next_of(socket, "session.created")
            assert created["session"]["type"] == "transcription"
            await send(socket, user_text("Store this, please."))
            answer = await next_of(socket, "error", "conversation.item.added",
                                   "conversation.item.created")  # fmt: skip
            assert answer["type"] == "error", answer
            assert answer["error"]["code"] == "invalid_request", answer
            await send(socket, {"type": "session.update", "session": {"type": "transcription",
                       "audio": {"input": {"transcription": {"language": "en"}}}}})  # fmt: skip
            updated = await next_of(socket, "session.updated", "error")
            assert updated["type"] == "session.updated", updated


def sentences(count: int) -> str:
    return " ".join(
        f"Sentence number {n} of this answer is here to make it long enough." for n in range(count)
    )


async def test_a_cancelled_answer_charges_only_what_was_spoken(
    container: Container, fresh_llm: FakeLLM
) -> None:
    """An answer of ~2,700 characters, cancelled at its first audio once all its text has
    come: the key is charged for the little that was synthesized, not for the whole text
    (the old code charged all of it and never gave it back), so 500 more characters of a
    3,000-a-day quota still speak."""
    fresh_llm.answer = sentences(40)
    assert len(fresh_llm.answer) > 2_600
    with serve(container, fresh_llm, tts_chars_per_day=3_000) as server:
        async with websockets.connect(ws_url(server), additional_headers=AUTH) as socket:
            await next_of(socket, "session.created")
            await send(socket, user_text("Tell me a long story."))
            await send(socket, {"type": "response.create"})
            transcript, audio, cancelled = "", 0, False
            async with asyncio.timeout(60):
                while True:
                    event = json.loads(await socket.recv())
                    kind = event["type"]
                    if kind == "response.output_audio_transcript.delta":
                        transcript += event["delta"]
                    elif kind == "response.output_audio.delta":
                        audio += len(event["delta"])
                    elif kind == "response.done":
                        done = event["response"]
                        break
                    if not cancelled and audio and len(transcript) == len(fresh_llm.answer):
                        await send(socket, {"type": "response.cancel"})
                        cancelled = True
        assert cancelled and done["status"] == "cancelled", done["status"]
        await asyncio.sleep(1)  # the answer's synthesis winds down
        async with httpx.AsyncClient(base_url=server.url, timeout=60, headers=AUTH) as http:
            for _ in range(20):  # what was never spoken is given back as the answer ends
                usage = await http.get("/v1/usage")
                used = usage.json()["tts_characters"]["used"]
                if used < 1_000:
                    break
                await asyncio.sleep(0.5)
            assert used < 1_000, f"charged {used} characters for a cancelled answer"
            more = await http.post("/api/tts", json={"text": sentences(8)[:500]})
    assert more.status_code == 200, more.text


async def test_when_the_quota_runs_out_mid_answer_what_was_paid_for_is_spoken(
    container: Container, fresh_llm: FakeLLM
) -> None:
    """60 characters a day and a longer answer: the answer fails `rate_limited`, but the text
    already paid for (up to 60 characters) is spoken first; the old code dropped it unsaid."""
    fresh_llm.answer = (
        "One two three four five six seven. Eight nine ten eleven twelve thirteen fourteen. "
        "Fifteen sixteen seventeen eighteen nineteen twenty."
    )
    with serve(container, fresh_llm, tts_chars_per_day=60) as server:
        async with websockets.connect(ws_url(server), additional_headers=AUTH) as socket:
            await next_of(socket, "session.created")
            await send(socket, user_text("Count for me."))
            await send(socket, {"type": "response.create"})
            audio = b""
            async with asyncio.timeout(60):
                while True:
                    event = json.loads(await socket.recv())
                    if event["type"] == "response.output_audio.delta":
                        audio += base64.b64decode(event["delta"])
                    elif event["type"] == "response.done":
                        done = event["response"]
                        break
    assert done["status"] == "failed", done
    assert done["status_details"]["error"]["code"] == "rate_limited", done["status_details"]
    transcript = done["output"][0]["content"][0]["transcript"]
    assert len(audio) >= 24_000, f"{len(audio)} bytes of audio (24 kHz s16le) before the end"
    assert 0 < len(transcript) <= 60, transcript
    assert transcript.startswith("One two three"), transcript


async def test_a_chat_model_that_never_finishes_fails_the_answer_in_time(
    container: Container, fresh_llm: FakeLLM
) -> None:
    """A chat server that sends an empty chunk every second forever: the answer fails
    (`llm_failed`) after LLM_ANSWER_SECONDS, and then the idle connection is closed with an
    `idle_timeout` error. The old code kept the answer, and the connection, open forever."""
    fresh_llm.trickle = 1.0
    with serve(container, fresh_llm, llm_answer_seconds=3, ws_idle_seconds=3) as server:
        async with websockets.connect(ws_url(server), additional_headers=AUTH) as socket:
            await next_of(socket, "session.created")
            await send(socket, user_text("Hello?"))
            await send(socket, {"type": "response.create"})
            answered = await within(socket, "response.done", wait=12)
            assert answered is not None, "no response.done within 12 s"
            done = answered["response"]
            assert done["status"] == "failed", done
            assert done["status_details"]["error"]["code"] == "llm_failed", done
            idle = await next_of(socket, "error", wait=15)  # sending nothing from here
            assert idle["error"]["code"] == "idle_timeout", idle
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                async with asyncio.timeout(10):
                    while True:
                        await socket.recv()
