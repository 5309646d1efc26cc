"""Provider fallback in SynthesizeSpeech: events, breaker transitions, cache separation."""

from __future__ import annotations

from typing import Any

from application.synthesize_speech import SpeakCommand
from domain.errors import ProviderError
from domain.events import (
    CircuitClosed,
    CircuitHalfOpened,
    CircuitOpened,
    ProviderFailed,
    ProviderFellBack,
    SpeechSynthesized,
)
from entrypoints.settings import Settings
from tests.unit.conftest import FakeWorld, build_world
from tests.unit.fakes import FakeSynthesizer


class FlakyCloud(FakeSynthesizer):
    """A cloud provider that fails with a provider error while `down` is set."""

    def __init__(self) -> None:
        super().__init__(provider="cloud", voices=("rachel", "adam"))
        self.down = False
        self.calls = 0

    async def synthesize(self, text: str, voice: str, speed: float = 1.0) -> Any:
        self.calls += 1
        if self.down:
            raise ProviderError("provider_error", "cloud answered 500", transient=True)
        return await super().synthesize(text, voice, speed)


def two_providers() -> tuple[FakeWorld, FlakyCloud]:
    cloud = FlakyCloud()
    world = build_world(
        Settings(
            max_text_chars=100,
            breaker_failures=2,
            breaker_cooldown_seconds=30,
            breaker_successes=2,
        ),
        synthesizers=[cloud],
    )
    return world, cloud


async def speak(world: FakeWorld, text: str, **fields: Any) -> Any:
    command = SpeakCommand(text=text, **fields)
    return await world.container.synthesize.execute(command, pipeline_id=text, transport="test")


async def events_of(world: FakeWorld, text: str) -> list[Any]:
    return [e for e in await world.recorded() if e.pipeline_id == text]


async def test_primary_serves_when_up() -> None:
    world, cloud = two_providers()
    result = await speak(world, "one")
    assert (result.audio.voice.provider, result.audio.voice.name) == ("cloud", "rachel")
    assert result.fallback is False and cloud.calls == 1


async def test_failing_primary_falls_back_with_events() -> None:
    world, cloud = two_providers()
    cloud.down = True
    result = await speak(world, "one")
    assert result.fallback is True
    assert (result.audio.voice.provider, result.audio.voice.name) == ("fake", "alice")
    events = await events_of(world, "one")
    failed = [e for e in events if isinstance(e, ProviderFailed)]
    assert [(e.provider, e.code) for e in failed] == [("cloud", "provider_error")]
    fell = [e for e in events if isinstance(e, ProviderFellBack)]
    assert [(e.from_provider, e.to_provider) for e in fell] == [("cloud", "fake")]
    spoken = [e for e in events if isinstance(e, SpeechSynthesized)]
    assert [e.provider for e in spoken] == ["fake"]


async def test_breaker_opens_skips_the_provider_then_recovers() -> None:
    world, cloud = two_providers()
    cloud.down = True
    await speak(world, "a")
    await speak(world, "b")  # second consecutive failure opens the circuit
    assert any(isinstance(e, CircuitOpened) for e in await events_of(world, "b"))
    calls = cloud.calls
    skipped = await speak(world, "c")
    assert skipped.fallback is True and cloud.calls == calls  # not called while open
    codes = [e.code for e in await events_of(world, "c") if isinstance(e, ProviderFailed)]
    assert codes == ["circuit_open"]
    cloud.down = False
    world.clock.t += 31  # cool-down over
    trial = await speak(world, "d")
    assert trial.fallback is False
    assert any(isinstance(e, CircuitHalfOpened) for e in await events_of(world, "d"))
    await speak(world, "e")
    assert any(isinstance(e, CircuitClosed) for e in await events_of(world, "e"))
    assert world.container.speech.providers.states() == {"cloud": "closed", "fake": "closed"}


async def test_cache_entries_never_mix_providers() -> None:
    world, cloud = two_providers()
    cloud.down = True
    served_by_fallback = await speak(world, "same")
    cloud.down = False
    again = await speak(world, "same")  # the cloud is up: its own entry is a miss
    assert again.cached is False and again.audio.voice.provider == "cloud"
    assert served_by_fallback.audio.voice.provider == "fake"
    third = await speak(world, "same")
    assert third.cached is True and third.audio.voice.provider == "cloud"


async def test_a_voice_of_a_later_provider_is_served_by_it_first() -> None:
    world, cloud = two_providers()
    result = await speak(world, "x", voice="bob")
    assert (result.audio.voice.provider, result.audio.voice.name) == ("fake", "bob")
    assert result.fallback is False and cloud.calls == 0


async def test_every_provider_failing_is_a_clear_503() -> None:
    world, cloud = two_providers()
    cloud.down = True
    world.synthesizer.fail = True
    try:
        await speak(world, "none")
    except Exception as error:
        assert getattr(error, "code", None) == "synthesis_failed"
        assert getattr(error, "status", None) == 503
    else:
        raise AssertionError("expected a failure")


async def test_busy_is_reported_not_counted_against_the_provider() -> None:
    from domain.errors import Busy

    world, cloud = two_providers()

    async def busy(text: str, voice: str, speed: float = 1.0) -> Any:
        raise Busy("full")

    cloud.synthesize = busy  # type: ignore[method-assign]
    try:
        await speak(world, "busy")
    except Busy as error:
        assert error.status == 503
    else:
        raise AssertionError("expected busy")
    assert world.container.speech.providers.breakers["cloud"].failures == 0
