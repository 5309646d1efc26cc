"""POST /v1/audio/transcriptions and /translations: OpenAI's speech-to-text routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.datastructures import FormMultiDict, UploadFile
from litestar.response import Stream

from application.access import Principal
from domain.errors import VoicePipeError
from domain.speech import Segment, TranscriptionHints
from entrypoints.bootstrap import Container
from entrypoints.errors import request_id
from entrypoints.openai.shapes import TRANSCRIPT_FORMATS, OpenAIError, transcript_response
from entrypoints.security import principal_of
from entrypoints.v1.wire import read_form

# The form fields besides `file`: each is text, and read as text below.
TEXT_FIELDS = ("model", "language", "prompt", "response_format", "temperature", "stream",
               "timestamp_granularities[]", "timestamp_granularities")  # fmt: skip


class Ask(msgspec.Struct, frozen=True):
    """What the form asks of the model."""

    language: str | None
    model: str | None
    task: str
    hints: TranscriptionHints


@post("/audio/transcriptions", status_code=200)
async def transcriptions(request: Request[Any, Any, Any]) -> Response[Any] | Stream:
    return await _listen(request, "transcribe")


@post("/audio/translations", status_code=200)
async def translations(request: Request[Any, Any, Any]) -> Response[Any] | Stream:
    """Speech in any language to English text (needs a multilingual model, e.g. `base`)."""
    return await _listen(request, "translate")


async def _listen(request: Request[Any, Any, Any], task: str) -> Response[Any] | Stream:
    container: Container = request.app.state.container
    if request.content_type[0] != "multipart/form-data":
        raise OpenAIError("send the audio as multipart/form-data with a `file` field",
                          param="file", code="invalid_request")  # fmt: skip
    form = await read_form(request)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise OpenAIError("a `file` field with the audio is required", param="file",
                          code="invalid_value")  # fmt: skip
    _only_text_fields(form)
    response_format = str(form.get("response_format") or "json")
    if response_format not in TRANSCRIPT_FORMATS:
        raise OpenAIError(f"response_format must be one of {', '.join(TRANSCRIPT_FORMATS)}",
                          param="response_format", code="invalid_value")  # fmt: skip
    ask = Ask(
        language=str(form.get("language") or "") or None,
        model=str(form.get("model") or "") or None,
        task=task,
        hints=_hints(form),
    )
    principal = principal_of(request)
    audio = await upload.read()
    if str(form.get("stream") or "false").lower() == "true":
        return _sse(container, principal, audio, ask)
    result = await _transcribe(container, principal, audio, ask)
    return transcript_response(result, response_format, task, ask.hints.words)


async def _transcribe(container: Container, principal: Principal, audio: bytes, ask: Ask) -> Any:
    return await container.transcribing.transcribe_once(
        principal, audio, ask.language, pipeline_id=request_id(), transport="openai",
        model=ask.model, task=ask.task, hints=ask.hints,
    )  # fmt: skip


def _only_text_fields(form: FormMultiDict) -> None:
    """A file sent where text belongs is the caller's mistake (400), not a crash (500)."""
    for name in TEXT_FIELDS:
        if any(isinstance(value, UploadFile) for value in form.getall(name, [])):
            raise OpenAIError(f"`{name}` must be a text field, not a file", param=name,
                              code="invalid_value")  # fmt: skip


def _hints(form: FormMultiDict) -> TranscriptionHints:
    granularities = set(form.getall("timestamp_granularities[]", []))
    granularities |= set(form.getall("timestamp_granularities", []))
    if granularities - {"segment", "word"}:
        raise OpenAIError("timestamp_granularities are segment and word",
                          param="timestamp_granularities", code="invalid_value")  # fmt: skip
    temperature = form.get("temperature")
    try:
        value = float(temperature) if temperature not in (None, "") else None
    except ValueError:
        value = -1.0
    if value is not None and not 0.0 <= value <= 1.0:
        raise OpenAIError("temperature is a number from 0 to 1", param="temperature",
                          code="invalid_value")  # fmt: skip
    prompt = str(form.get("prompt") or "") or None
    return TranscriptionHints(prompt=prompt, temperature=value, words="word" in granularities)


def _sse(container: Container, principal: Principal, audio: bytes, ask: Ask) -> Stream:
    """Server-sent events as OpenAI streams them: a delta per segment, then the whole text."""

    async def events() -> AsyncIterator[bytes]:
        first = True
        found = container.transcribing.segments(
            principal, audio, ask.language, pipeline_id=request_id(), transport="openai",
            model=ask.model, task=ask.task, hints=ask.hints,
        )  # fmt: skip
        try:
            async for item in found:
                if isinstance(item, Segment):
                    if item.text:
                        delta = item.text if first else " " + item.text
                        first = False
                        yield _event({"type": "transcript.text.delta", "delta": delta})
                else:
                    yield _event({"type": "transcript.text.done", "text": item.transcript.text})
        except VoicePipeError as error:
            yield _event({"type": "error", "error": {"message": error.message, "code": error.code}})

    return Stream(events(), media_type="text/event-stream")


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + msgspec.json.encode(payload) + b"\n\n"
