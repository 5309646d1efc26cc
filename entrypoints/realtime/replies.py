"""What a Realtime answer is asked to be: the session's settings, and what one
`response.create` changes for that answer, as the conversation's ReplyOptions."""

from __future__ import annotations

import msgspec

from application.conversation_session import ReplyOptions
from application.replying import OutputAudio
from domain.errors import InvalidRequest
from domain.tools import checked_choice, checked_tools
from entrypoints.openai.speech import voice_of
from entrypoints.realtime import events as ev
from entrypoints.realtime.session import SessionConfig, tokens


def reply_options(
    config: SessionConfig,
    asked: ev.ResponseIn,
    *,
    beta: bool,
    voices: dict[str, list[str]],
) -> ReplyOptions:
    modalities: list[str] = list(
        asked.output_modalities or asked.modalities or config.output_modalities
    )
    if beta and "audio" in modalities:
        modalities = ["audio"]
    if modalities not in (["audio"], ["text"]):
        raise InvalidRequest('output_modalities must be ["audio"] or ["text"]')
    limit = asked.max_output_tokens
    if isinstance(limit, msgspec.UnsetType):
        limit = asked.max_response_output_tokens
    audio = None
    if modalities == ["audio"]:
        voice = asked.audio.output.voice or asked.voice or config.voice
        audio = OutputAudio(
            encoding=config.output_encoding,
            rate=config.rate_of(config.output_format),
            voice=voice_of(voice, voices),
            speed=config.speed,
        )
    tools = config.tools if asked.tools is None else checked_tools(asked.tools, "response.tools")
    choice = config.tool_choice if asked.tool_choice is None else asked.tool_choice
    out_of_band = asked.conversation == "none"
    conversation_id = None if out_of_band else "conv_" + config.id.removeprefix("sess_")
    tag = {"conversation_id": conversation_id, "output_modalities": modalities,
           "metadata": asked.metadata}  # fmt: skip
    unset = isinstance(limit, msgspec.UnsetType)
    return ReplyOptions(
        instructions=config.instructions if asked.instructions is None else asked.instructions,
        audio=audio,
        max_tokens=config.max_output_tokens if unset else tokens(limit),
        in_conversation=not out_of_band,
        tag=tag,
        tools=tools,
        tool_choice=checked_choice(choice, tools, "response.tool_choice"),
    )
