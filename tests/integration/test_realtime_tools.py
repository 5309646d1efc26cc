"""Function calling over /v1/realtime, driven by the official `openai` SDK: the chat model's
tool calls stream to the client as function_call items, the client's outputs go back to the
model, and the answer after them is spoken (a fake chat server streams `tool_calls`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from entrypoints.bootstrap import Container
from entrypoints.settings import Settings
from tests.integration.conftest import RunningServer, sharing_models
from tests.integration.fake_llm import FakeLLM

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city now.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
TIME = {"type": "function", "name": "get_time", "parameters": {"type": "object"}}


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM("Done.") as fake:
        yield fake


@pytest.fixture(scope="module")
def agent(container: Container, llm: FakeLLM) -> Iterator[RunningServer]:
    settings = Settings(llm_base_url=llm.url, llm_model="fake-model")
    with RunningServer(sharing_models(container, settings)) as running:
        yield running


def client(server: RunningServer) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server.url + "/v1", api_key="unused")


async def until(connection: Any, kind: str, seen: list[Any], wait: float = 60) -> Any:
    async with asyncio.timeout(wait):
        async for event in connection:
            seen.append(event)
            if event.type == kind:
                return event
    raise AssertionError(f"the connection closed before {kind}")


async def ask(connection: Any, text: str, seen: list[Any]) -> None:
    await connection.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    )
    await until(connection, "conversation.item.done", seen)


async def setup(connection: Any, seen: list[Any], **session: Any) -> None:
    await connection.session.update(session={"type": "realtime", **session})
    await until(connection, "session.updated", seen)


async def test_a_tool_call_streams_and_the_answer_to_its_output_is_spoken(
    agent: RunningServer, llm: FakeLLM
) -> None:
    arguments = json.dumps({"city": "Paris", "unit": "celsius"})
    llm.script = [
        {"calls": [{"id": "call_w1", "name": "get_weather", "arguments": arguments}]},
        {"text": "It is sunny and twenty degrees in Paris."},
    ]
    async with client(agent).realtime.connect(model="gpt-realtime") as connection:
        seen: list[Any] = []
        await setup(connection, seen, tools=[WEATHER], tool_choice="auto")
        assert seen[-1].session.tools[0].name == "get_weather"
        await ask(connection, "What is the weather in Paris?", seen)
        await connection.response.create()
        start = len(seen)
        done = await until(connection, "response.done", seen)
        call_events = [e.type for e in seen[start:]]
        assert call_events[:3] == [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
        ]
        added = seen[start + 1]
        assert added.item.type == "function_call" and added.item.status == "in_progress"
        deltas = [e for e in seen[start:] if e.type == "response.function_call_arguments.delta"]
        assert len(deltas) > 1 and "".join(e.delta for e in deltas) == arguments
        finished = next(e for e in seen if e.type == "response.function_call_arguments.done")
        assert (finished.call_id, finished.name, finished.arguments) == (
            "call_w1",
            "get_weather",
            arguments,
        )
        assert call_events[-3:] == [
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
        ]
        assert not any("audio" in kind for kind in call_events)  # a call is not spoken
        assert done.response.status == "completed"
        [call] = done.response.output
        assert call.type == "function_call" and call.status == "completed"
        assert call.call_id == "call_w1" and call.arguments == arguments
        offered = llm.requests[-1]
        assert offered["tools"] == [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": WEATHER["description"],
                    "parameters": WEATHER["parameters"],
                },
            }
        ]
        assert offered["tool_choice"] == "auto"

        await connection.conversation.item.create(
            item={"type": "function_call_output", "call_id": "call_w1", "output": '{"temp": 20}'}
        )
        output = await until(connection, "conversation.item.done", seen)
        assert output.item.type == "function_call_output" and output.item.call_id == "call_w1"
        await connection.response.create()
        spoken = await until(connection, "response.done", seen)
    assert spoken.response.status == "completed"
    [message] = spoken.response.output
    assert message.content[0].transcript == "It is sunny and twenty degrees in Paris."
    assert any(e.type == "response.output_audio.delta" for e in seen)
    messages = llm.requests[-1]["messages"]
    call_message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_w1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": arguments},
            }
        ],
    }
    assert messages[-3:] == [
        {"role": "user", "content": "What is the weather in Paris?"},
        call_message,
        {"role": "tool", "tool_call_id": "call_w1", "content": '{"temp": 20}'},
    ]


async def test_several_calls_then_text_in_one_answer_and_calls_answered_with_calls(
    agent: RunningServer, llm: FakeLLM
) -> None:
    llm.script = [
        {
            "calls": [
                {"id": "call_a", "name": "get_weather", "arguments": '{"city": "Oslo"}'},
                {"id": "call_b", "name": "get_time", "arguments": "{}"},
            ],
            "text": "Let me check both.",
        },
        {"calls": [{"id": "call_c", "name": "get_weather", "arguments": '{"city": "Rome"}'}]},
    ]
    async with client(agent).realtime.connect(model="gpt-realtime") as connection:
        seen: list[Any] = []
        await setup(connection, seen, tools=[WEATHER, TIME], output_modalities=["text"])
        await ask(connection, "Weather in Oslo and the time?", seen)
        await connection.response.create()
        done = await until(connection, "response.done", seen)
        outputs = done.response.output
        assert [o.type for o in outputs] == ["function_call", "function_call", "message"]
        assert [o.call_id for o in outputs[:2]] == ["call_a", "call_b"]
        assert outputs[2].content[0].text == "Let me check both."
        indexes = [
            e.output_index for e in seen if e.type == "response.function_call_arguments.done"
        ]
        assert indexes == [0, 1]
        text_at = {e.output_index for e in seen if e.type == "response.output_text.delta"}
        assert text_at == {2}
        for call_id, result in (("call_a", "-3 C"), ("call_b", "09:00")):
            await connection.conversation.item.create(
                item={"type": "function_call_output", "call_id": call_id, "output": result}
            )
            await until(connection, "conversation.item.done", seen)
        await connection.response.create()
        again = await until(connection, "response.done", seen)
        [more] = again.response.output
        assert more.type == "function_call" and more.call_id == "call_c"
    messages = llm.requests[-1]["messages"]
    tool_messages = [m for m in messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["call_a", "call_b"]
    for message in tool_messages:  # each output right after its call, as chat servers demand
        before = messages[messages.index(message) - 1]
        assert before["tool_calls"][0]["id"] == message["tool_call_id"]


@pytest.mark.parametrize(
    ("session", "param"),
    [
        ({"tools": [{**WEATHER, "name": "get weather"}]}, "session.tools[0].name"),
        ({"tools": [{**WEATHER, "parameters": {"type": "string"}}]}, "session.tools[0].parameters"),
        ({"tools": [WEATHER, WEATHER]}, "session.tools[1].name"),
        ({"tools": [{"type": "mcp", "server_label": "x"}]}, "session.tools[0]"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "name": "nope"}},
            "session.tool_choice",
        ),
        ({"tools": [{**WEATHER, "parameters": {"p": "x" * 70_000}}]}, "session.tools"),
    ],
)
async def test_an_invalid_tool_is_a_coded_error_and_the_session_goes_on(
    agent: RunningServer, session: dict[str, Any], param: str
) -> None:
    async with client(agent).realtime.connect(model="gpt-realtime") as connection:
        seen: list[Any] = []
        await connection.session.update(session={"type": "realtime", **session})  # type: ignore[arg-type]
        error = await until(connection, "error", seen)
        assert error.error.code == "invalid_value" and error.error.param.startswith(param)
        await setup(connection, seen, tools=[WEATHER])
        assert [t.name for t in seen[-1].session.tools] == ["get_weather"]


async def test_an_output_for_a_call_that_does_not_exist_is_refused(agent: RunningServer) -> None:
    async with client(agent).realtime.connect(model="gpt-realtime") as connection:
        seen: list[Any] = []
        await setup(connection, seen, tools=[WEATHER])
        await connection.conversation.item.create(
            item={"type": "function_call_output", "call_id": "call_nope", "output": "x"}
        )
        error = await until(connection, "error", seen)
        assert error.error.param == "item.call_id" and "call_nope" in error.error.message
        no_call_id = {"type": "function_call_output", "output": "x"}
        await connection.send({"type": "conversation.item.create", "item": no_call_id})  # type: ignore[arg-type]
        missing = await until(connection, "error", seen)
        assert missing.error.param == "item.call_id"
        await ask(connection, "Still here?", seen)  # the connection goes on


async def test_a_cancelled_call_ends_incomplete_with_its_arguments_so_far(
    agent: RunningServer, llm: FakeLLM
) -> None:
    llm.token_delay = 0.05
    long = json.dumps({"city": "Paris", "notes": "x" * 400})
    llm.script = [{"calls": [{"id": "call_long", "name": "get_weather", "arguments": long}]}]
    try:
        async with client(agent).realtime.connect(model="gpt-realtime") as connection:
            seen: list[Any] = []
            await setup(connection, seen, tools=[WEATHER], output_modalities=["text"])
            await ask(connection, "Weather?", seen)
            await connection.response.create()
            await until(connection, "response.function_call_arguments.delta", seen)
            await connection.response.cancel()
            done = await until(connection, "response.done", seen)
    finally:
        llm.token_delay = 0.0
    assert done.response.status == "cancelled"
    [call] = done.response.output
    assert call.status == "incomplete" and len(call.arguments) < len(long)
    finished = next(e for e in seen if e.type == "response.function_call_arguments.done")
    assert finished.arguments == call.arguments
