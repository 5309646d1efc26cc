"""A listening session hears through the noise filter its session chose (or the service's
default), charges what was received, hands the filter's tail over at the end and closes it."""

from __future__ import annotations

import msgspec
import pytest

from application.listening_session import ListeningSession, StartListening
from application.ports import NoiseReduction
from application.transcribe_stream import StreamEvent
from domain.errors import InvalidRequest
from entrypoints.settings import Settings, SettingsError
from tests.unit.conftest import FakeWorld, build_world


class SilencingFilter:
    """Turns everything into silence: what a perfect filter makes of pure noise."""

    def __init__(self, mode: NoiseReduction, log: list[str]) -> None:
        self.mode = mode
        self.log = log

    async def process(self, pcm: bytes) -> bytes:
        self.log.append(f"process {len(pcm)}")
        return bytes(len(pcm))

    async def flush(self) -> bytes:
        self.log.append("flush")
        return bytes(960)

    def close(self) -> None:
        self.log.append("close")


class FakeDenoiser:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.opened: list[NoiseReduction] = []

    def open(self, mode: NoiseReduction) -> SilencingFilter:
        self.opened.append(mode)
        return SilencingFilter(mode, self.log)


def listen_with(
    world: FakeWorld, denoiser: FakeDenoiser | None, default: NoiseReduction
) -> StartListening:
    listen = world.container.listen
    return StartListening(
        transcriber=listen.transcriber,
        transcribe=listen.transcribe,
        voice_activity=listen.voice_activity,
        converter=listen.converter,
        access=listen.access,
        clock=listen.clock,
        limits=listen.limits,
        denoiser=denoiser,
        noise_reduction=default,
    )


def open_session(listen: StartListening, choice: str | None) -> ListeningSession:
    async def emit(item: StreamEvent) -> None:
        pass

    return listen.open(
        stream_id="s1",
        encoding="pcm_s16le",
        sample_rate=16_000,
        language=None,
        principal=listen.access.authenticate(None),
        emit=emit,
        noise_reduction=choice,
    )


@pytest.mark.parametrize(
    ("default", "choice", "opened"),
    [
        ("off", None, []),
        ("far_field", None, ["far_field"]),
        ("off", "near_field", ["near_field"]),
        ("far_field", "off", []),  # the Realtime API's null
    ],
)
async def test_the_session_choice_wins_over_the_default(
    default: NoiseReduction, choice: str | None, opened: list[str]
) -> None:
    denoiser = FakeDenoiser()
    session = open_session(listen_with(build_world(), denoiser, default), choice)
    assert denoiser.opened == opened
    assert (session.noise is None) == (not opened)


@pytest.mark.parametrize("choice", ["", "loud", "NEAR_FIELD", "null"])
async def test_an_unknown_choice_is_refused_before_anything_opens(choice: str) -> None:
    denoiser = FakeDenoiser()
    with pytest.raises(InvalidRequest, match="noise_reduction must be one of"):
        open_session(listen_with(build_world(), denoiser, "off"), choice)
    assert denoiser.opened == []


async def test_without_a_denoiser_asking_for_one_is_refused() -> None:
    listen = listen_with(build_world(), None, "off")
    with pytest.raises(InvalidRequest, match="not available"):
        open_session(listen, "far_field")
    assert open_session(listen, "off").noise is None


async def test_the_model_hears_the_filtered_audio_and_the_tail_at_the_end() -> None:
    world = build_world()
    denoiser = FakeDenoiser()
    session = open_session(listen_with(world, denoiser, "near_field"), None)
    heard: list[bytes] = []
    real_feed = session.utterances.feed

    async def feed(pcm: bytes) -> None:
        heard.append(pcm)
        await real_feed(pcm)

    session.utterances.feed = feed  # type: ignore[method-assign]
    await session.feed(b"\x01\x02" * 320)
    await session.feed(b"")
    await session.stop(finish=True)
    assert heard == [bytes(640), bytes(960)]  # filtered frame, then the filter's tail
    assert denoiser.log == ["process 640", "flush", "close"]
    assert session.heard_seconds == pytest.approx(640 / 32_000)  # what was received


async def test_a_client_that_leaves_closes_the_filter_without_flushing() -> None:
    denoiser = FakeDenoiser()
    session = open_session(listen_with(build_world(), denoiser, "far_field"), None)
    await session.feed(b"\x00\x00" * 160)
    await session.stop(finish=False)
    assert denoiser.log == ["process 320", "close"]


def test_the_setting_takes_the_three_modes_only() -> None:
    for mode in ("off", "near_field", "far_field"):
        assert Settings.from_env({"NOISE_REDUCTION": mode}).noise_reduction == mode
    assert Settings().noise_reduction == "off"
    with pytest.raises(SettingsError, match="NOISE_REDUCTION"):
        Settings.from_env({"NOISE_REDUCTION": "on"})
    world = build_world(msgspec.structs.replace(Settings(), noise_reduction="far_field"))
    assert world.container.listen.noise_reduction == "far_field"
