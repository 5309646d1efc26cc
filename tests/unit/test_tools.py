"""Tools and tool calls: checked once, kept with their outputs in the conversation's bounds,
and given to the chat model as chat-completions servers demand."""

from __future__ import annotations

from typing import Any

import pytest

from application.tool_calls import (
    MAX_CALLS,
    ReplyCall,
    ReplyCallArguments,
    ReplyCallDone,
    ToolCalls,
    TooManyCalls,
)
from domain.conversation import ChatTurn, Conversation, Item, history
from domain.errors import InvalidRequest, InvalidValue
from domain.tools import NamedTool, Tool, ToolCall, ToolCallDelta, checked_choice, checked_tools


def call(item_id: str, call_id: str, arguments: str = "{}") -> Item:
    return Item(id=item_id, role="assistant", audio=False, type="function_call",
                call_id=call_id, name="lookup", text=arguments)  # fmt: skip


def output(item_id: str, call_id: str, text: str) -> Item:
    return Item(id=item_id, role="user", audio=False, type="function_call_output",
                call_id=call_id, text=text)  # fmt: skip


def nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"p": schema}}
    return schema


def say(item_id: str, role: Any, text: str) -> Item:
    return Item(id=item_id, role=role, audio=False, text=text)


def test_a_call_goes_to_the_model_with_its_output_right_after_it() -> None:
    items = [
        say("1", "user", "Find it."),
        call("2", "c1", '{"q": "x"}'),
        say("3", "user", "Hurry."),  # said before the output came
        output("4", "c1", "found"),
    ]
    assert history(items, "", 10_000) == [
        ChatTurn("user", "Find it."),
        ChatTurn("assistant", "", calls=(ToolCall("c1", "lookup", '{"q": "x"}'),)),
        ChatTurn("tool", "found", call_id="c1"),
        ChatTurn("user", "Hurry."),
    ]


def test_a_call_without_its_output_or_an_output_without_its_call_is_left_out() -> None:
    items = [call("1", "old", "x" * 50), output("2", "old", "y"), call("3", "open"),
             say("4", "user", "Hi")]  # fmt: skip
    # The budget keeps the output of `old` but not its call: neither goes; `open` has none.
    assert history(items, "", 10) == [ChatTurn("user", "Hi")]


def test_the_bounds_count_tool_items_and_drop_the_oldest() -> None:
    conversation = Conversation(max_items=3, max_chars=100)
    conversation.add(call("1", "c1", "a" * 40))
    conversation.add(output("2", "c1", "b" * 40))
    conversation.add(output("3", "c1", "c" * 40))  # over 100 characters: the oldest goes
    assert list(conversation.items) == ["2", "3"] and conversation.dropped == ["1"]
    conversation.add(call("4", "c2"))
    conversation.add(call("5", "c3"))  # four items: the oldest goes
    assert list(conversation.items) == ["3", "4", "5"]


def test_an_output_needs_its_call_and_a_call_id_is_used_once() -> None:
    conversation = Conversation()
    with pytest.raises(InvalidRequest, match="not found"):
        conversation.add(output("1", "nope", "x"))
    conversation.add(call("2", "c1"))
    with pytest.raises(InvalidRequest, match="already exists"):
        conversation.add(call("3", "c1"))
    conversation.add(output("4", "c1", "x"))
    assert list(conversation.items) == ["2", "4"]


@pytest.mark.parametrize(
    ("tools", "param"),
    [
        ([Tool("bad name")], "tools[0].name"),
        ([Tool("x" * 65)], "tools[0].name"),
        ([Tool("a"), Tool("a")], "tools[1].name"),
        ([Tool("a", parameters={"type": "array"})], "tools[0].parameters"),
        ([Tool(f"t{i}") for i in range(129)], "tools"),
        ([Tool("a", parameters={"enum": ["x" * 1000] * 70})], "tools"),
        ([Tool("a", parameters=nested(40))], "tools[0].parameters"),
    ],
)
def test_invalid_tools_are_refused_naming_the_field(tools: list[Tool], param: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        checked_tools(tools, "tools")
    assert refused.value.param == param


def test_a_schema_as_deep_as_real_ones_is_taken() -> None:
    assert checked_tools([Tool("a", parameters=nested(10))], "tools")


def test_a_named_choice_must_name_an_offered_tool() -> None:
    tools = checked_tools([Tool("auto")], "tools")  # a tool may be named like a mode
    assert checked_choice(NamedTool("auto"), tools, "tool_choice") == NamedTool("auto")
    assert checked_choice("required", tools, "tool_choice") == "required"
    with pytest.raises(InvalidValue):
        checked_choice(NamedTool("other"), tools, "tool_choice")


def test_calls_stream_as_begin_arguments_done_one_at_a_time() -> None:
    told: list[object] = []
    calls = ToolCalls(told.append)
    calls.add(ToolCallDelta(0, "c1", "lookup", '{"a"'))
    calls.add(ToolCallDelta(0, arguments=": 1}"))
    calls.add(ToolCallDelta(1, None, "other"))  # no id from the model: one is made
    calls.add(ToolCallDelta(0, arguments="late"))  # for a call already done: dropped
    calls.close()
    calls.close()
    assert told[:4] == [
        ReplyCall(0, "c1", "lookup"),
        ReplyCallArguments(0, '{"a"'),
        ReplyCallArguments(0, ": 1}"),
        ReplyCallDone(0),
    ]
    begun = told[4]
    assert isinstance(begun, ReplyCall) and begun.call_id.startswith("call_")
    assert told[5:] == [ReplyCallDone(1)] and calls.chars == len('{"a": 1}')


def test_a_model_past_the_calls_of_one_answer_is_stopped() -> None:
    told: list[object] = []
    calls = ToolCalls(told.append)
    for index in range(MAX_CALLS):
        calls.add(ToolCallDelta(index, f"c{index}", "lookup", "{}"))
    with pytest.raises(TooManyCalls):
        calls.add(ToolCallDelta(MAX_CALLS, "one-more", "lookup", "{}"))
    assert sum(isinstance(t, ReplyCall) for t in told) == MAX_CALLS
