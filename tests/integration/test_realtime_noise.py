"""The Realtime API's `audio.input.noise_reduction`: the session hears through the noise
filter it asks for (the official SDK, a real server, speech in loud fan-like noise)."""

from __future__ import annotations

import array
import math
import random
from typing import Any

from tests.integration.conftest import RunningServer
from tests.integration.speech import wer
from tests.integration.test_realtime_api import append, client, silence, speech_pcm, until

SAID = "Please call me back tomorrow morning."


def noisy(pcm: bytes, snr_db: float) -> bytes:
    """Brown noise with a 50 Hz hum at `snr_db` below the speech: a steady fan."""
    speech = array.array("h", pcm)
    power = sum(x * x for x in speech) / len(speech)
    rng, level, noise = random.Random(7), 0.0, []
    for n in range(len(speech)):
        level = 0.98 * level + rng.gauss(0, 1)
        noise.append(level + 3 * math.sin(2 * math.pi * 50 * n / 24_000))
    scale = math.sqrt(power / 10 ** (snr_db / 10) / (sum(v * v for v in noise) / len(noise)))
    mixed = (
        max(-32768, min(32767, int(s + scale * v))) for s, v in zip(speech, noise, strict=True)
    )
    return array.array("h", mixed).tobytes()


async def heard(server: RunningServer, noise: dict[str, str] | None) -> tuple[Any, str]:
    async with client(server).realtime.connect(extra_query={"intent": "transcription"}) as rt:
        seen: list[Any] = []
        audio_in: dict[str, Any] = {"noise_reduction": noise}
        session: Any = {"type": "transcription", "audio": {"input": audio_in}}
        await rt.session.update(session=session)
        updated = await until(rt, "session.updated", seen)
        await append(rt, noisy(silence(400) + speech_pcm(SAID) + silence(900), 5.0))
        done = await until(rt, "conversation.item.input_audio_transcription.completed", seen)
    return updated.session.audio.input.noise_reduction, done.transcript


async def test_a_session_chooses_its_noise_filter_and_hears_through_it(
    server: RunningServer,
) -> None:
    shown, filtered = await heard(server, {"type": "near_field"})
    assert shown.type == "near_field"
    off, raw = await heard(server, None)
    assert off is None
    assert wer(SAID, filtered) <= 0.35  # speech in a loud fan, heard through the filter
    assert wer(SAID, filtered) <= wer(SAID, raw) + 0.15


async def test_an_unknown_noise_filter_is_a_coded_error_and_the_session_goes_on(
    server: RunningServer,
) -> None:
    async with client(server).realtime.connect(extra_query={"intent": "transcription"}) as rt:
        seen: list[Any] = []
        bad = {"type": "transcription", "audio": {"input": {"noise_reduction": {"type": "room"}}}}
        await rt.session.update(session=bad)  # type: ignore[arg-type]
        error = await until(rt, "error", seen)
        assert error.error.code == "invalid_value"
        assert error.error.param == "session.audio.input.noise_reduction.type"
        await rt.session.update(session={"type": "transcription"})
        updated = await until(rt, "session.updated", seen)
        assert updated.session.audio.input.noise_reduction is None
