"""What makes instances behave as one fleet: capacity-aware readiness and shared breakers.

Readiness: a real service whose STT queue fills reports 503 on /ready (and says why on
/health) while the requests already in it finish, then 200 again once it drains.
Shared breakers: two services on one real Redis, ElevenLabs (the fake) failing: failures seen
by one open the circuit on the other, which then never calls ElevenLabs; each records its own
state change in the shared stream.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
import redis

from domain.events import CircuitOpened, decode_event
from entrypoints import speech_models, wiring
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.settings import Settings
from tests.integration.conftest import RunningServer, sharing_models
from tests.integration.fake_elevenlabs import API_KEY, FakeElevenLabs
from tests.integration.speech import SENTENCES, speak


def wait_for(check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_saturated_instance_reports_not_ready_until_it_drains(
    container: Container, http: httpx.Client
) -> None:
    # The session's models (STT queue bound 16), marked saturated at 2 jobs.
    settings = msgspec.structs.replace(container.settings, ready_queue_fraction=0.1)
    audio = speak(http, " ".join(SENTENCES))
    with RunningServer(sharing_models(container, settings)) as server:

        async def scenario() -> tuple[list[int], list[int], list[dict[str, object]]]:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                assert (await client.get("/ready")).status_code == 200
                jobs = [
                    asyncio.create_task(client.post("/api/stt", files={"file": ("a.wav", audio)}))
                    for _ in range(4)
                ]
                seen: list[int] = []
                bodies: list[dict[str, object]] = []
                while not all(job.done() for job in jobs):
                    ready = await client.get("/ready")
                    seen.append(ready.status_code)
                    if ready.status_code == 503 and len(bodies) < 1:
                        bodies.append(ready.json())
                        bodies.append((await client.get("/health")).json())
                    await asyncio.sleep(0.05)
                statuses = [(await job).status_code for job in jobs]
                seen.append((await client.get("/ready")).status_code)
                return statuses, seen, bodies

        statuses, seen, bodies = asyncio.run(scenario())
    assert statuses == [200] * 4  # the work already here keeps going
    assert 503 in seen, seen
    assert seen[-1] == 200, "ready again once the queue drained"
    refused, health = bodies
    assert refused["code"] == "not_ready" and "stt" in str(refused["message"])
    assert health["ready"] is False and health["readiness"]["reasons"]  # type: ignore[index]


def test_requests_that_outlast_the_shutdown_get_a_retryable_503(
    container: Container, http: httpx.Client
) -> None:
    # uvicorn cancels what outlasts its graceful shutdown; those must not read as a 500.
    audio = speak(http, " ".join(SENTENCES))
    server = RunningServer(sharing_models(container, container.settings))
    server.server.config.timeout_graceful_shutdown = 0
    with server:

        async def scenario() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                jobs = [
                    asyncio.create_task(client.post("/api/stt", files={"file": ("a.wav", audio)}))
                    for _ in range(4)
                ]
                await asyncio.sleep(0.3)  # all four queued or running
                server.server.should_exit = True
                return list(await asyncio.gather(*jobs))

        answers = asyncio.run(scenario())
    statuses = [r.status_code for r in answers]
    assert 503 in statuses and set(statuses) <= {200, 503}, statuses
    for answer in answers:
        if answer.status_code == 503:
            assert answer.json()["code"] == "shutting_down"
            assert answer.headers["retry-after"] == "1"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeElevenLabs]:
    with FakeElevenLabs() as server:
        yield server


def cloud_first(container: Container, redis_url: str, prefix: str, fake_url: str) -> Container:
    settings = Settings(
        redis_url=redis_url,
        redis_prefix=prefix,
        tts_providers=("elevenlabs", "piper"),
        elevenlabs_api_key=API_KEY,
        elevenlabs_base_url=fake_url,
        elevenlabs_timeout_seconds=2.0,
        elevenlabs_attempts=1,
        breaker_failures=2,
        breaker_cooldown_seconds=3600,
        breaker_sync_seconds=0.2,
        stt_turn_detection="silence",
    )
    piper = container.speech.providers.synthesizers[0]
    cloud = speech_models.elevenlabs(settings, wiring.codec(settings))
    return bootstrap(
        settings,
        synthesizers=[cloud, piper],
        transcriber=container.transcriber,
        voice_activity=container.voice_activity,
    )


def test_failures_seen_by_one_instance_open_the_breaker_on_the_other(
    container: Container, redis_url: str, fake: FakeElevenLabs
) -> None:
    prefix = f"breakers-{uuid.uuid4().hex[:8]}"
    fake.mode = "ok"
    with (
        RunningServer(cloud_first(container, redis_url, prefix, fake.url)) as one,
        RunningServer(cloud_first(container, redis_url, prefix, fake.url)) as two,
        httpx.Client(base_url=one.url, timeout=30) as to_one,
        httpx.Client(base_url=two.url, timeout=30) as to_two,
    ):
        assert to_two.post("/api/tts", json={"text": "Cloud voice first."}).json()["provider"] == (
            "elevenlabs"
        )
        fake.mode = "error500"
        for i in range(2):  # breaker_failures: only instance one sees ElevenLabs fail
            body = to_one.post("/api/tts", json={"text": f"Failing {i}."}).json()
            assert body["provider"] == "piper"
        assert to_one.get("/health").json()["components"]["tts"]["breakers"]["elevenlabs"] == (
            "open"
        )
        wait_for(
            lambda: (
                to_two.get("/health").json()["components"]["tts"]["breakers"]["elevenlabs"]
                == "open"
            ),
            timeout=10,
        )
        calls = fake.tts_calls()
        body = to_two.post("/api/tts", json={"text": "Straight to the local voice."}).json()
        assert body["provider"] == "piper"
        assert fake.tts_calls() == calls, "the open breaker kept instance two off ElevenLabs"
        raw: Any = redis.Redis.from_url(redis_url)
        opened = [
            event
            for _, fields in raw.xrange(f"{prefix}:events")
            if isinstance(event := decode_event(fields[b"e"]), CircuitOpened)
        ]
        # Two state changes, one per instance: one's own, and two's adopted (shared) one.
        assert sorted(e.shared for e in opened) == [False, True]
        raw.delete(f"{prefix}:events", f"{prefix}:breaker:elevenlabs")
    fake.mode = "ok"
