"""The ElevenLabs adapter against a fake ElevenLabs over real HTTP, scenario by scenario."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from adapters.elevenlabs_synthesizer import ElevenLabsSynthesizer
from adapters.pyav_codec import PyAVAudioCodec
from domain.errors import ProviderError
from tests.integration.conftest import free_port
from tests.integration.fake_elevenlabs import API_KEY, FakeElevenLabs

GEORGE = "JBFqnCBsd6RMkjVDRZzb"
TEXT = "Hello from the cloud voice."


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeElevenLabs]:
    with FakeElevenLabs() as server:
        yield server


@pytest.fixture(autouse=True)
def reset(fake: FakeElevenLabs) -> None:
    fake.mode, fake.failures_left, fake.hang_seconds = "ok", 0, 30.0
    fake.calls.clear()


def adapter(url: str, **options: object) -> ElevenLabsSynthesizer:
    settings: dict[str, object] = {
        "api_key": API_KEY,
        "voices": {"george": GEORGE, "nobody": "no-such-voice"},
        "default_voice": "george",
        "model_id": "eleven_flash_v2_5",
        "output_format": "mp3_44100_128",
        "codec": PyAVAudioCodec(),
        "base_url": url,
        "timeout": 2.0,
        "attempts": 3,
        "max_seconds": 10.0,
        **options,
    }
    return ElevenLabsSynthesizer(**settings)  # type: ignore[arg-type]


async def fails_with(synth: ElevenLabsSynthesizer, code: str, voice: str = "george") -> float:
    started = time.monotonic()
    with pytest.raises(ProviderError) as raised:
        await synth.synthesize(TEXT, voice)
    assert raised.value.code == code, raised.value.message
    return time.monotonic() - started


@pytest.mark.parametrize("output_format", ["mp3_44100_128", "pcm_22050", "pcm_16000"])
async def test_success_returns_real_audio_at_one_rate(
    fake: FakeElevenLabs, output_format: str
) -> None:
    # A generous timeout: a loaded machine must not turn this into a retry (counted below).
    synth = adapter(fake.url, output_format=output_format, timeout=30.0)
    clip = await synth.synthesize(TEXT, "george")
    assert clip.sample_rate == 22_050
    assert 1000 < clip.duration_ms < 3000
    assert max(clip.pcm[i] for i in range(1, len(clip.pcm), 2)) > 0  # not silence
    assert fake.tts_calls() == 1


async def test_5xx_is_retried_then_reported(fake: FakeElevenLabs) -> None:
    fake.mode = "error500"
    await fails_with(adapter(fake.url), "provider_error")
    assert fake.tts_calls() == 3


async def test_a_transient_5xx_is_absorbed_by_a_retry(fake: FakeElevenLabs) -> None:
    fake.mode, fake.failures_left = "flaky500", 1
    clip = await adapter(fake.url).synthesize(TEXT, "george")
    assert clip.duration_ms > 1000 and fake.tts_calls() == 2


async def test_429_retry_after_is_honoured(fake: FakeElevenLabs) -> None:
    fake.mode, fake.failures_left = "rate_limit", 1
    started = time.monotonic()
    await adapter(fake.url).synthesize(TEXT, "george")
    assert time.monotonic() - started >= 0.95  # Retry-After: 1
    assert fake.tts_calls() == 2


async def test_connection_refused_is_retried_and_bounded() -> None:
    elapsed = await fails_with(
        adapter(f"http://127.0.0.1:{free_port()}", attempts=3), "provider_unavailable"
    )
    assert elapsed < 5


async def test_a_hanging_server_is_bounded_by_the_timeouts(fake: FakeElevenLabs) -> None:
    fake.mode = "hang"
    elapsed = await fails_with(
        adapter(fake.url, timeout=0.5, attempts=2, max_seconds=3.0), "provider_timeout"
    )
    assert 0.9 < elapsed < 3.5
    assert fake.tts_calls() == 2


async def test_a_stream_cut_off_half_way_is_retried(fake: FakeElevenLabs) -> None:
    fake.mode = "cut"
    await fails_with(adapter(fake.url), "provider_unavailable")
    assert fake.tts_calls() == 3


async def test_a_malformed_body_is_not_retried(fake: FakeElevenLabs) -> None:
    fake.mode = "malformed"
    await fails_with(adapter(fake.url), "provider_bad_response")
    assert fake.tts_calls() == 1


async def test_a_bad_key_is_not_retried_and_is_reported(fake: FakeElevenLabs) -> None:
    synth = adapter(fake.url, api_key="wrong")
    await fails_with(synth, "provider_unauthorized")
    assert fake.tts_calls() == 1
    assert synth.problem is not None and "API key" in synth.problem


async def test_an_unknown_voice_is_not_retried(fake: FakeElevenLabs) -> None:
    await fails_with(adapter(fake.url), "provider_voice_not_found", voice="nobody")
    assert fake.tts_calls() == 1


async def test_start_up_check_reports_key_and_voice(fake: FakeElevenLabs) -> None:
    good = adapter(fake.url)
    await good.check()
    assert good.problem is None
    bad_key = adapter(fake.url, api_key="wrong")
    await bad_key.check()
    assert bad_key.problem is not None and "provider_unauthorized" in bad_key.problem
    bad_voice = adapter(fake.url, voices={"x": "no-such-voice"}, default_voice="x")
    await bad_voice.check()
    assert bad_voice.problem is not None and "voice" in bad_voice.problem
