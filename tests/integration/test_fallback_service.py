"""The service with ElevenLabs first and Piper second, against the fake ElevenLabs."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings
from tests.integration.conftest import RunningServer
from tests.integration.fake_elevenlabs import API_KEY, FakeElevenLabs
from tests.integration.speech import speak


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeElevenLabs]:
    with FakeElevenLabs() as server:
        yield server


def service(fake: FakeElevenLabs, **overrides: object) -> RunningServer:
    fields: dict[str, object] = {
        "tts_providers": ("elevenlabs", "piper"),
        "elevenlabs_api_key": API_KEY,
        "elevenlabs_base_url": fake.url,
        "elevenlabs_timeout_seconds": 2.0,
        "elevenlabs_attempts": 2,
        "breaker_failures": 5,
        "breaker_cooldown_seconds": 60,
        **overrides,
    }
    settings = Settings(**fields)  # type: ignore[arg-type]
    return RunningServer(bootstrap(settings))


def dbfs(wav_bytes: bytes) -> float:
    with wave.open(io.BytesIO(wav_bytes)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2") / 32768.0
    return float(20 * np.log10(np.sqrt(np.mean(samples**2))))


def test_cloud_voice_serves_and_loudness_matches_piper(fake: FakeElevenLabs) -> None:
    fake.mode, fake.gain_db = "ok", -15.0  # the cloud speaks much quieter than Piper
    with service(fake) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        body = http.post("/api/tts", json={"text": "Loud and clear from the cloud."}).json()
        assert (body["provider"], body["fallback"]) == ("elevenlabs", False)
        assert body["voice"] == "JBFqnCBsd6RMkjVDRZzb"
        cloud = dbfs(speak(http, "Loud and clear from the cloud."))
        local = speak(http, "Loud and clear from the local voice.", voice="en_US-joe-medium")
        assert abs(cloud + 20) <= 1.0 and abs(dbfs(local) + 20) <= 1.0
    fake.gain_db = 0.0


def test_outage_under_load_falls_back_and_opens_the_breaker(fake: FakeElevenLabs) -> None:
    fake.mode = "error500"
    fake.calls.clear()
    # A cool-down no slow machine outlasts: the last check is that no call gets through.
    with (
        service(fake, breaker_cooldown_seconds=3600) as server,
        httpx.Client(base_url=server.url, timeout=60) as http,
    ):

        async def burst(count: int) -> list[dict[str, object]]:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                semaphore = asyncio.Semaphore(20)

                async def one(i: int) -> dict[str, object]:
                    async with semaphore:
                        response = await client.post("/api/tts", json={"text": f"Outage {i}."})
                        assert response.status_code == 200
                        return dict(response.json())

                return await asyncio.gather(*(one(i) for i in range(count)))

        bodies = asyncio.run(burst(200))
        assert all(b["provider"] == "piper" and b["fallback"] is True for b in bodies)
        calls = fake.tts_calls()
        # Opens after 5 failures; requests already in flight when it opened finish their try.
        assert calls <= (5 + 20) * 2, calls
        health = http.get("/health").json()
        assert health["components"]["tts"]["breakers"]["elevenlabs"] == "open"
        assert health["status"] == "degraded"
        stats = http.get("/stats").json()
        cloud = stats["providers"]["elevenlabs"]
        assert cloud["breaker"] == "open" and cloud["breaker_opened"] == 1
        assert cloud["failures"]["circuit_open"] >= 150
        assert cloud["fell_back_to"]["piper"] == 200
        asyncio.run(burst(20))
        assert fake.tts_calls() == calls  # no call while the circuit is open


def test_bad_key_warns_at_start_and_piper_serves(fake: FakeElevenLabs) -> None:
    fake.mode = "ok"
    with (
        service(fake, elevenlabs_api_key="wrong") as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        health = http.get("/health").json()
        assert "provider_unauthorized" in health["components"]["tts"]["problems"]["elevenlabs"]
        assert health["status"] == "degraded"
        body = http.post("/api/tts", json={"text": "Served locally."}).json()
        assert (body["provider"], body["fallback"]) == ("piper", True)


def test_missing_key_skips_the_cloud_with_a_warning(fake: FakeElevenLabs) -> None:
    with (
        service(fake, elevenlabs_api_key=None) as server,
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        health = http.get("/health").json()
        assert any("ELEVENLABS_API_KEY" in w for w in health["warnings"])
        assert list(health["components"]["tts"]["providers"]) == ["piper"]
        body = http.post("/api/tts", json={"text": "No key, no cloud."}).json()
        assert body["provider"] == "piper"
