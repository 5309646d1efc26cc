"""GET /v1/usage on a real server: the numbers the quotas enforce, per key, over real HTTP."""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from websockets.sync.client import connect

from entrypoints.bootstrap import Container, bootstrap
from entrypoints.settings import Settings
from tests.integration.conftest import RunningServer, SteppedClock, midday_utc

KEYS = {"alice": "alice-usage-k3y-0123456789", "bob": "bob-usage-k3y-0123456789"}
TEXT = "Usage is counted in characters."  # 31 characters, nothing to normalise


@pytest.fixture(scope="module")
def days_clock() -> SteppedClock:
    return SteppedClock(start=midday_utc())  # no UTC day ends during the test


@pytest.fixture(scope="module")
def metered(container: Container, days_clock: SteppedClock) -> Iterator[RunningServer]:
    settings = Settings(
        api_keys=tuple(f"{name}:{key}" for name, key in KEYS.items()),
        rate_limit_per_minute=600,
        tts_chars_per_day=60,
        stt_seconds_per_day=100,
        llm_chars_per_day=0,  # no limit: rendered as null
        connections_per_key=3,
        stt_turn_detection="silence",
    )
    service = bootstrap(  # the session service's loaded models, this module's settings
        settings,
        synthesizers=container.speech.providers.synthesizers,
        transcriber=container.transcriber,
        voice_activity=container.voice_activity,
        turns=container.listen.turns,
        clock=days_clock,
    )
    with RunningServer(service) as running:
        yield running


def client(server: RunningServer, name: str | None = None) -> httpx.Client:
    headers = {"authorization": f"Bearer {KEYS[name]}"} if name else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=60)


def silence_wav(seconds: float, rate: int = 16_000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"\x00\x00" * int(rate * seconds))
    return out.getvalue()


def test_usage_shows_exactly_what_a_key_used_and_what_is_left(
    metered: RunningServer, days_clock: SteppedClock
) -> None:
    with client(metered, "alice") as alice:
        assert alice.post("/api/tts", json={"text": TEXT}).status_code == 200
        heard = alice.post("/api/stt", files={"file": ("s.wav", silence_wav(2.5))})
        assert heard.status_code == 200, heard.text
        response = alice.get("/v1/usage")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    usage = response.json()
    now = days_clock.now()
    assert len(usage.pop("key_id")) == 12
    assert usage == {
        "name": "alice",
        "day": datetime.fromtimestamp(now, UTC).date().isoformat(),
        "resets_in_seconds": pytest.approx(86_400 - now % 86_400, abs=5),
        "requests": {"used": 3, "limit": 600, "left": 597, "window_seconds": 60},
        "tts_characters": {"used": len(TEXT), "limit": 60, "left": 60 - len(TEXT)},
        "stt_seconds": {"used": 2.5, "limit": 100, "left": 97.5},
        "llm_characters": {"used": 0, "limit": None, "left": None},
        "connections": {"used": 0, "limit": 3, "left": 3},
    }


def test_usage_agrees_with_the_quota_and_counts_open_connections(
    metered: RunningServer,
) -> None:
    with client(metered, "bob") as bob:
        assert bob.post("/api/tts", json={"text": TEXT}).status_code == 200
        left = bob.get("/v1/usage").json()["tts_characters"]["left"]
        assert left == 60 - len(TEXT)
        over = bob.post("/api/tts", json={"text": "x" * (left + 1)})
        assert over.status_code == 429 and over.json()["code"] == "rate_limited"
        assert bob.get("/v1/usage").json()["tts_characters"]["left"] == left  # refused: free
        assert bob.post("/api/tts", json={"text": "y" * left}).status_code == 200
        assert bob.get("/v1/usage").json()["tts_characters"] == {
            "used": 60,
            "limit": 60,
            "left": 0,
        }
        socket = connect(metered.ws_url, additional_headers={"x-api-key": KEYS["bob"]})
        with socket:
            deadline = time.monotonic() + 10  # the slot is taken just after the handshake
            while (connections := bob.get("/v1/usage").json()["connections"])["used"] != 1:
                assert time.monotonic() < deadline, connections
                time.sleep(0.02)
            assert connections == {"used": 1, "limit": 3, "left": 2}
    with client(metered, "alice") as alice:  # bob's use is not alice's
        assert alice.get("/v1/usage").json()["connections"]["used"] == 0


def test_usage_needs_a_key_and_answers_in_openais_shape(metered: RunningServer) -> None:
    with client(metered) as anonymous:
        response = anonymous.get("/v1/usage")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["code"] == "unauthorized" and error["type"] == "invalid_request_error"
    with httpx.Client(base_url=metered.url, headers={"x-api-key": "wrong"}) as wrong:
        assert wrong.get("/v1/usage").json()["error"]["code"] == "unauthorized"
