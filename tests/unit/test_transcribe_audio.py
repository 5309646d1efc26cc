"""TranscribeAudio with fakes: the exact events of each path, and each step's failure."""

from __future__ import annotations

import pytest

from domain.errors import AudioTooLarge, AudioTooLong, InvalidAudio, StepFailed
from domain.events import RequestFailed
from tests.unit.conftest import FakeWorld

SUCCESS = [
    "RequestReceived",
    "AudioDecoded",
    "SpeechTranscribed",
    "SentimentAnalysed",
    "RequestCompleted",
]


async def transcribe(world: FakeWorld, audio: bytes, language: str | None = None) -> object:
    return await world.container.transcribe.execute(
        audio, language, pipeline_id="s1", transport="test"
    )


async def test_success_records_every_step(world: FakeWorld) -> None:
    result = await transcribe(world, b"AUDIO" + b"\x00\x01" * 1600, "en")
    assert result.transcript.text == "hello world"  # type: ignore[attr-defined]
    assert result.sentiment.label == "neutral"  # type: ignore[attr-defined]
    events = await world.recorded()
    assert [type(e).__name__ for e in events] == SUCCESS
    transcribed = events[2]
    assert transcribed.model == "fake-model"  # type: ignore[union-attr]
    assert transcribed.audio_ms == pytest.approx(100.0)  # type: ignore[union-attr]
    assert events[0].input_size == 3205  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("audio", "error", "step"),
    [
        (b"", InvalidAudio, "validation"),
        (b"AUDIO" + b"\x00" * 20_000, AudioTooLarge, "validation"),
        (b"not audio at all", InvalidAudio, "decoding"),
        (b"AUDIO" + b"\x00\x00" * 16_000 * 6, AudioTooLong, "decoding"),
    ],
)
async def test_bad_audio_is_refused_and_recorded(
    world: FakeWorld, audio: bytes, error: type[Exception], step: str
) -> None:
    world.container.transcribe.max_audio_bytes = 300_000 if error is AudioTooLong else 10_000
    with pytest.raises(error):
        await transcribe(world, audio)
    failed = (await world.recorded())[-1]
    assert isinstance(failed, RequestFailed)
    assert (failed.step, failed.pipeline) == (step, "stt")


@pytest.mark.parametrize(
    ("part", "step"), [("codec", "decoding"), ("transcriber", "transcription")]
)
async def test_dependency_failure_is_a_step_failure(world: FakeWorld, part: str, step: str) -> None:
    if part == "codec":
        world.codec.fail_decode = True
    else:
        world.transcriber.fail = True
    with pytest.raises(StepFailed) as raised:
        await transcribe(world, b"AUDIO\x00\x00")
    assert raised.value.code == f"{step}_failed"
    failed = (await world.recorded())[-1]
    assert isinstance(failed, RequestFailed) and failed.code == f"{step}_failed"


async def test_sentiment_failure_still_returns_the_transcript(world: FakeWorld) -> None:
    world.sentiment.fail = True
    result = await transcribe(world, b"AUDIO\x00\x00")
    assert result.transcript.text == "hello world"  # type: ignore[attr-defined]
    assert result.sentiment is None  # type: ignore[attr-defined]
    assert (await world.recorded_types())[-2:] == ["StepDegraded", "RequestCompleted"]
