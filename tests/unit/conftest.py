from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

from adapters.memory_cache import InMemoryAudioCache
from adapters.memory_event_log import InMemoryEventLog
from domain.events import DomainEvent
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.settings import Settings
from tests.unit.fakes import (
    FakeClock,
    FakeCodec,
    FakeConverter,
    FakeProcessor,
    FakeSentiment,
    FakeSynthesizer,
    FakeTranscriber,
    FakeVoiceActivity,
)


@dataclass
class FakeWorld:
    """The whole service wired with fakes through the composition root."""

    container: Container
    synthesizer: FakeSynthesizer
    transcriber: FakeTranscriber
    processor: FakeProcessor
    codec: FakeCodec
    sentiment: FakeSentiment
    events: InMemoryEventLog
    clock: FakeClock

    async def recorded(self) -> list[DomainEvent]:
        return [event for _, event in await self.events.read(None, 10_000)]

    async def recorded_types(self) -> list[str]:
        return [type(event).__name__ for event in await self.recorded()]


def build_world(
    settings: Settings | None = None,
    cache: object | None = None,
    synthesizers: list[Any] | None = None,
) -> FakeWorld:
    """`synthesizers` come first in provider order; the FakeSynthesizer is always last."""
    clock = FakeClock()
    world = FakeWorld(
        container=None,  # type: ignore[arg-type]
        synthesizer=FakeSynthesizer(),
        transcriber=FakeTranscriber(),
        processor=FakeProcessor(),
        codec=FakeCodec(),
        sentiment=FakeSentiment(),
        events=InMemoryEventLog(),
        clock=clock,
    )
    settings = settings or Settings(max_text_chars=100, max_audio_bytes=10_000, max_audio_seconds=5)
    world.container = bootstrap(
        msgspec.structs.replace(settings, stt_turn_detection="silence"),
        synthesizers=[*(synthesizers or []), world.synthesizer],
        transcriber=world.transcriber,
        processor=world.processor,
        codec=world.codec,
        sentiment=world.sentiment,
        cache=cache or InMemoryAudioCache(max_bytes=1_000_000, ttl_seconds=60, clock=clock),  # type: ignore[arg-type]
        events=world.events,
        clock=clock,
        voice_activity=FakeVoiceActivity(),
        converter=FakeConverter(),
        turns=NoTurns(),  # not the real model: semantic turns are tested on their own
    )
    return world


class NoTurns:
    async def complete(self, pcm: bytes) -> float:
        raise AssertionError("no semantic turns in these worlds")


@pytest.fixture
def world() -> FakeWorld:
    return build_world()
