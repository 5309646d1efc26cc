"""POST /v1/listen: Deepgram's prerecorded transcription, on the one-shot transcription path
(same quota, limits, charge and events as every upload)."""

from __future__ import annotations

import hashlib
from typing import Any

from litestar import Request, Response, post

from domain.speech import TranscriptionHints
from entrypoints.bootstrap import Container
from entrypoints.deepgram import options, shapes
from entrypoints.deepgram.query import Query, UnsupportedFeature
from entrypoints.errors import request_id
from entrypoints.security import principal_of

TRANSPORT = "deepgram"


def models(container: Container) -> options.Models:
    catalog = container.catalog
    return options.Models(catalog.default_model, tuple(catalog.model_names()))


def is_container(audio: bytes) -> bool:
    """A WAV sent with a raw `encoding` is still a WAV: its header says what it holds."""
    return audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"


@post("/listen", status_code=200)
async def listen_file(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """The audio is the body (any container, or raw samples with `encoding`)."""
    container: Container = request.app.state.container
    asked = options.prerecorded(Query(request.query_params.multi_items()), models(container))
    if request.content_type[0] == "application/json":
        raise UnsupportedFeature(
            "url",
            "transcribing audio from a URL is not supported (this service fetches nothing): "
            "send the audio itself as the request body",
        )
    audio = await request.body()
    principal = principal_of(request)
    shared = asked.common
    hints = TranscriptionHints(prompt=shared.prompt, words=True)
    rid = request_id()
    if asked.encoding is not None and not is_container(audio):
        assert asked.sample_rate is not None  # options require it with a raw encoding
        result = await container.transcribing.transcribe_raw(
            principal,
            audio,
            shared.language,
            encoding=asked.encoding,
            sample_rate=asked.sample_rate,
            channels=asked.channels,
            pipeline_id=rid,
            transport=TRANSPORT,
            model=shared.model,
            hints=hints,
        )
    else:
        result = await container.transcribing.transcribe_once(
            principal,
            audio,
            shared.language,
            pipeline_id=rid,
            transport=TRANSPORT,
            model=shared.model,
            hints=hints,
        )
    body = shapes.prerecorded(
        result,
        request=rid,
        created=container.clock.now(),
        sha256=hashlib.sha256(audio).hexdigest(),
        model=shared.model_name,
        punctuate=shared.punctuate,
        with_utterances=asked.utterances,
        utt_split=asked.utt_split,
        detect_language=asked.detect_language,
    )
    return Response(body, headers={"dg-request-id": rid})
