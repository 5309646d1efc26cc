"""LanguageModel on any OpenAI-compatible chat-completions server (Ollama, vLLM, llama.cpp,
OpenAI), through the official SDK: streamed answers, one retry on connection errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import cast

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from domain.conversation import ChatTurn
from domain.errors import LanguageModelFailed


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

    async def reply(self, turns: Sequence[ChatTurn], max_tokens: int | None) -> AsyncIterator[str]:
        messages = cast(
            "list[ChatCompletionMessageParam]",
            [{"role": turn.role, "content": turn.text} for turn in turns],
        )
        try:
            stream = await self._client.chat.completions.create(
                model=self._model,
                messages=messages,
                stream=True,
                max_tokens=max_tokens if max_tokens else openai.omit,
            )
            async with stream:
                async for chunk in stream:
                    for choice in chunk.choices:
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
