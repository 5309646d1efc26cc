"""Tools a chat model may call, and the calls it makes: the function tools of OpenAI's APIs,
checked once, before any answer starts."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from domain.errors import InvalidValue

MAX_TOOLS = 128  # as chat-completions allows
MAX_TOOL_BYTES = 64_000  # all tools' JSON together: it is sent with every answer
MAX_SCHEMA_DEPTH = 32  # nesting of a tool's parameters (a deep one can break a JSON encoder)
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Tool(msgspec.Struct, frozen=True):
    name: str
    description: Annotated[str, Meta(max_length=4096)] = ""
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)  # a JSON Schema
    type: Literal["function"] = "function"


class NamedTool(msgspec.Struct, frozen=True):
    """A tool choice that names the one tool to call."""

    name: str
    type: Literal["function"] = "function"


class ToolCall(msgspec.Struct, frozen=True):
    call_id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


class ToolCallDelta(msgspec.Struct, frozen=True):
    """A piece of a call as the model streams it; `index` tells calls in one answer apart."""

    index: int
    call_id: str | None = None
    name: str | None = None
    arguments: str = ""


ToolChoice = Literal["auto", "none", "required"] | NamedTool


def checked_tools(tools: list[Tool], where: str) -> tuple[Tool, ...]:
    """`tools` with unique valid names and object schemas, bounded in count and size."""
    if len(tools) > MAX_TOOLS:
        raise InvalidValue(f"{where}: at most {MAX_TOOLS} tools", param=where)
    if len(msgspec.json.encode(tools)) > MAX_TOOL_BYTES:
        raise InvalidValue(
            f"{where}: tools are limited to {MAX_TOOL_BYTES} bytes of JSON", param=where
        )
    seen: set[str] = set()
    for index, tool in enumerate(tools):
        at = f"{where}[{index}]"
        if not _NAME.match(tool.name):
            raise InvalidValue(
                f"{at}.name must be 1 to 64 letters, digits, underscores or dashes",
                param=f"{at}.name",
            )
        if tool.name in seen:
            raise InvalidValue(f"{at}.name: two tools are named {tool.name!r}", param=f"{at}.name")
        seen.add(tool.name)
        if _depth(tool.parameters) > MAX_SCHEMA_DEPTH:
            raise InvalidValue(
                f"{at}.parameters nests deeper than {MAX_SCHEMA_DEPTH} levels",
                param=f"{at}.parameters",
            )
        kind = tool.parameters.get("type", "object")
        if kind != "object":
            raise InvalidValue(
                f"{at}.parameters must be a JSON Schema of type object", param=f"{at}.parameters"
            )
    return tuple(tools)


def _depth(value: object) -> int:
    """How deep `value` nests (iteratively: never deeper than the schema itself)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        for child in children:
            if isinstance(child, dict | list):
                deepest = max(deepest, level)
                if level <= MAX_SCHEMA_DEPTH:
                    todo.append((child, level + 1))
    return deepest + 1 if isinstance(value, dict | list) else 0


def checked_choice(choice: ToolChoice, tools: tuple[Tool, ...], where: str) -> ToolChoice:
    if isinstance(choice, NamedTool) and choice.name not in {tool.name for tool in tools}:
        raise InvalidValue(f"{where}: no tool is named {choice.name!r}", param=where)
    return choice
