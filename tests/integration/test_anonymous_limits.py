"""With API_KEYS set, Wyoming's clients (its protocol has no authentication) share one key's
quotas, in the `anonymous` bucket: a hostile one cannot synthesize without end."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.tts import Synthesize

from entrypoints.bootstrap import Container
from entrypoints.settings import Settings
from entrypoints.wyoming.service import WyomingService
from tests.integration.conftest import RunningServer, sharing_models

KEY = "wyoming-operator-k3y-0123456789"
TEXT = "The porch light is on."  # 22 characters: one fits in the 40 a day, two do not


@pytest.fixture(scope="module")
def keyed_wyoming(container: Container) -> Iterator[tuple[RunningServer, int]]:
    settings = Settings(
        api_keys=(f"operator:{KEY}",),
        tts_chars_per_day=40,
        wyoming_uri="tcp://127.0.0.1:0",
        stt_turn_detection="silence",
    )
    built = sharing_models(container, settings)
    service = WyomingService(built)
    service.attach()
    with RunningServer(built) as running:
        yield running, service.port


async def speak(port: int, text: str) -> list[Event]:
    """The events a Wyoming `synthesize` gets, up to its audio-stop or error."""
    seen: list[Event] = []
    async with AsyncTcpClient("127.0.0.1", port) as connection, asyncio.timeout(60):
        await connection.write_event(Synthesize(text=text).event())
        while (event := await connection.read_event()) is not None:
            seen.append(event)
            if event.type in ("audio-stop", "error"):
                break
    return seen


async def test_wyoming_clients_share_the_anonymous_quota_when_keys_are_set(
    keyed_wyoming: tuple[RunningServer, int],
) -> None:
    server, port = keyed_wyoming
    first = await speak(port, TEXT)
    assert first[-1].type == "audio-stop", [e.type for e in first]
    second = await speak(port, TEXT)  # another connection: the quota is all clients'
    assert second[-1].type == "error", [e.type for e in second]
    error = Error.from_event(second[-1])
    assert error.code == "rate_limited" and "anonymous clients" in error.text
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        keyed = await http.post(
            "/api/tts", json={"text": TEXT}, headers={"authorization": f"Bearer {KEY}"}
        )
        assert keyed.status_code == 200  # the key's own quota is untouched
        usage = await http.get("/v1/usage", headers={"authorization": f"Bearer {KEY}"})
    assert usage.json()["tts_characters"] == {"used": len(TEXT), "limit": 40, "left": 18}
