"""LanguageModel on any OpenAI-compatible chat-completions server (Ollama, vLLM, llama.cpp,
OpenAI), through the official SDK: streamed answers and tool calls, one retry on connection
errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from domain.conversation import ChatTurn
from domain.errors import LanguageModelFailed
from domain.tools import NamedTool, Tool, ToolCallDelta, ToolChoice


class OpenAIChat:
    def __init__(
        self, *, base_url: str, model: str, api_key: str | None, timeout: float = 30.0
    ) -> None:
        self._model = model
        self._client = AsyncOpenAI(
            base_url=base_url, api_key=api_key or "unused", timeout=timeout, max_retries=1
        )

    @property
    def model_name(self) -> str:
        return self._model

    async def reply(
        self,
        turns: Sequence[ChatTurn],
        max_tokens: int | None,
        tools: Sequence[Tool] = (),
        tool_choice: ToolChoice = "auto",
    ) -> AsyncIterator[str | ToolCallDelta]:
        offered: dict[str, Any] = {}
        if tools:
            offered["tools"] = [
                {"type": "function", "function": {"name": t.name, "description": t.description,
                                                  "parameters": t.parameters}}
                for t in tools
            ]  # fmt: skip
            offered["tool_choice"] = (
                {"type": "function", "function": {"name": tool_choice.name}}
                if isinstance(tool_choice, NamedTool)
                else tool_choice
            )
        try:
            stream = await self._client.chat.completions.create(
                model=self._model,
                messages=cast("list[ChatCompletionMessageParam]", [_message(t) for t in turns]),
                stream=True,
                max_tokens=max_tokens if max_tokens else openai.omit,
                **offered,
            )
            async with stream:
                async for chunk in stream:
                    for choice in chunk.choices:
                        for call in choice.delta.tool_calls or ():
                            function = call.function
                            yield ToolCallDelta(
                                index=call.index,
                                call_id=call.id,
                                name=function.name if function else None,
                                arguments=(function.arguments or "") if function else "",
                            )
                        if choice.delta.content:
                            yield choice.delta.content
        except openai.APIStatusError as error:
            raise LanguageModelFailed(
                f"the chat model answered HTTP {error.status_code} (LLM_BASE_URL)"
            ) from error
        except openai.APIError as error:
            raise LanguageModelFailed(
                f"the chat model could not be reached: {type(error).__name__} (LLM_BASE_URL)"
            ) from error

    async def close(self) -> None:
        await self._client.close()


def _message(turn: ChatTurn) -> dict[str, Any]:
    if turn.role == "tool":
        return {"role": "tool", "tool_call_id": turn.call_id, "content": turn.text}
    if not turn.calls:
        return {"role": turn.role, "content": turn.text}
    calls = [
        {"id": c.call_id, "type": "function",
         "function": {"name": c.name, "arguments": c.arguments}}
        for c in turn.calls
    ]  # fmt: skip
    return {"role": "assistant", "content": turn.text or None, "tool_calls": calls}
