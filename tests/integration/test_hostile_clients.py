"""Hostile clients against a server with API keys and small limits: each limit holds.

Black-box: a real server over HTTP and WebSocket, one test per defect a hostile-input review
found (audio charges, concurrent quotas, the connection cap with Redis, streamed text length,
odd frames, request ids on refusals, stray frames, idle streams, the Origin's scheme).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import uuid
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect as connect_async
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings
from tests.integration.conftest import RunningServer

KEYS = {
    name: f"{name}-h0st-{i:04d}-0123456789abcdef"
    for i, name in enumerate(
        [
            "stream16k",
            "stream8k",
            "uploads",
            "socket",
            "deltas",
            "narrowband",
            "minute",
            "stray",
            "quiet",
            "browser",
        ]
    )
}
STT_SECONDS_PER_DAY = 33
REQUESTS_PER_MINUTE = 30
FRAME_BYTES = 256 * 1024  # the largest binary frame a stream accepts


@pytest.fixture(scope="module")
def hostile() -> Iterator[RunningServer]:
    settings = Settings(
        api_keys=tuple(f"{name}:{key}" for name, key in KEYS.items()),
        rate_limit_per_minute=REQUESTS_PER_MINUTE,
        stt_seconds_per_day=STT_SECONDS_PER_DAY,
        max_text_chars=100,
        ws_idle_seconds=2,
    )
    with RunningServer(bootstrap(settings)) as running:
        yield running


@pytest.fixture(scope="module")
def shared(redis_url: str) -> Iterator[RunningServer]:
    """Limits counted in Redis, as when several instances serve the same keys."""
    settings = Settings(
        api_keys=tuple(f"{name}:{key}" for name, key in KEYS.items()),
        redis_url=redis_url,
        redis_prefix=f"hostile-{uuid.uuid4().hex[:8]}",
        ws_max_connections=4,
        connections_per_key=100,
    )
    with RunningServer(bootstrap(settings)) as running:
        yield running


def client(server: RunningServer, name: str | None = None) -> httpx.Client:
    headers = {"authorization": f"Bearer {KEYS[name]}"} if name is not None else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=60)


def ws(server: RunningServer, name: str, **options: Any) -> ClientConnection:
    connection: ClientConnection = connect(
        server.ws_url, max_size=None, additional_headers={"x-api-key": KEYS[name]}, **options
    )
    return connection


def json_frames_until(connection: ClientConnection, kind: str) -> list[dict[str, Any]]:
    """Every JSON frame up to and including the first of type `kind` (audio skipped)."""
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["type"] != kind:
        frame = connection.recv(timeout=60)
        if isinstance(frame, str):
            seen.append(json.loads(frame))
    return seen


def wav_of_silence(seconds: float) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(16_000)
        writer.writeframes(b"\x00\x00" * int(16_000 * seconds))
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "rate", "frames"),
    [("stream16k", 16_000, 6), ("stream8k", 8_000, 3)],
    ids=["16 kHz", "8 kHz"],
)
def test_streamed_audio_in_large_frames_is_charged_in_full(
    hostile: RunningServer, name: str, rate: int, frames: int
) -> None:
    """49 s of audio in 256 KiB frames (8.2 s or 16.4 s each) against 33 s a day."""
    frame_seconds = FRAME_BYTES / 2 / rate
    with ws(hostile, name) as c:
        c.send(json.dumps({"type": "stt_start", "id": "big", "sample_rate": rate}))
        assert json.loads(c.recv(timeout=10))["type"] == "stt_started"
        for _ in range(frames):
            c.send(b"\x00" * FRAME_BYTES)
        c.send(json.dumps({"type": "stt_stop"}))
        seen = json_frames_until(c, "stt_stopped")
    refused = [m["code"] for m in seen if m["type"] == "error"]
    assert refused and set(refused) == {"rate_limited"}, seen  # refused once past the quota
    assert (frames - len(refused)) * frame_seconds <= STT_SECONDS_PER_DAY
    # The frames heard used 32.8 s of the 33: one more second is over the quota.
    with client(hostile, name) as http:
        response = http.post("/api/stt", files={"file": ("one.wav", wav_of_silence(1))})
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "rate_limited"
    assert "audio seconds" in response.json()["message"]


def test_concurrent_uploads_cannot_share_out_more_than_the_quota(hostile: RunningServer) -> None:
    """12 uploads of 8 s at once against 33 s a day: 4 fit, 8 do not."""
    clip = wav_of_silence(8)

    async def upload_all() -> list[httpx.Response]:
        headers = {"authorization": f"Bearer {KEYS['uploads']}"}
        limits = httpx.Limits(max_connections=12)
        async with httpx.AsyncClient(
            base_url=hostile.url, headers=headers, timeout=60, limits=limits
        ) as c:
            uploads = [c.post("/api/stt", files={"file": ("a.wav", clip)}) for _ in range(12)]
            return list(await asyncio.gather(*uploads))

    responses = asyncio.run(upload_all())
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 4 and statuses.count(429) == 8, statuses
    assert {r.json()["code"] for r in responses if r.status_code == 429} == {"rate_limited"}


def test_concurrent_handshakes_respect_the_connection_cap_with_redis(
    shared: RunningServer,
) -> None:
    """9 handshakes at once against WS_MAX_CONNECTIONS=4: 4 are served, 5 refused."""

    async def handshake_all() -> list[tuple[str, int | None]]:
        headers = {"x-api-key": KEYS["socket"]}
        async with contextlib.AsyncExitStack() as stack:
            opening = [
                stack.enter_async_context(connect_async(shared.ws_url, additional_headers=headers))
                for _ in range(9)
            ]
            sockets = await asyncio.gather(*opening)
            outcomes: list[tuple[str, int | None]] = []
            for socket in sockets:
                # A served connection answers the probe; a refused one said why and closed.
                with contextlib.suppress(ConnectionClosed):
                    await socket.send(json.dumps({"type": "cancel", "id": "probe"}))
                frame = json.loads(await asyncio.wait_for(socket.recv(), 10))
                if frame["code"] == "too_many_connections":
                    await asyncio.wait_for(socket.wait_closed(), 10)
                outcomes.append((frame["code"], socket.close_code))
            return outcomes

    outcomes = asyncio.run(handshake_all())
    assert outcomes.count(("invalid_request", None)) == 4, outcomes
    assert outcomes.count(("too_many_connections", 1008)) == 5, outcomes


def test_text_deltas_are_bounded_by_max_text_chars(hostile: RunningServer) -> None:
    """330 characters in pieces of 33 with MAX_TEXT_CHARS=100: the 4th piece on is refused."""
    sentence = "Here is one more short sentence."
    with ws(hostile, "deltas") as c:
        for _ in range(10):
            c.send(json.dumps({"type": "text_delta", "id": "long", "text": sentence + " "}))
        c.send(json.dumps({"type": "flush", "id": "long"}))
        seen = json_frames_until(c, "audio_end")
        c.send(json.dumps({"type": "text", "text": "Still here.", "id": "after"}))
        reply = json.loads(c.recv(timeout=60))
    refused = [m["code"] for m in seen if m["type"] == "error"]
    assert refused == ["text_too_long"] * 7, seen
    assert seen[-1]["text"] == " ".join([sentence] * 3)  # what was refused is not spoken
    assert (reply["type"], reply["id"]) == ("audio", "after")


def test_empty_and_one_byte_frames_in_an_8khz_stream_are_harmless(
    hostile: RunningServer,
) -> None:
    twenty_ms = b"\x00\x00" * 160
    with ws(hostile, "narrowband") as c:
        c.send(json.dumps({"type": "stt_start", "id": "nb", "sample_rate": 8000}))
        assert json.loads(c.recv(timeout=10))["type"] == "stt_started"
        # Before any audio (the resampler holds nothing yet) and in the middle of it.
        for frame in [b"", b"\x01"] + [twenty_ms] * 25 + [b"", b"\x01"] + [twenty_ms] * 25:
            c.send(frame)
        c.send(json.dumps({"type": "stt_stop"}))
        seen = json_frames_until(c, "stt_stopped")
    assert [m for m in seen if m["type"] == "error"] == []
    assert seen[-1]["id"] == "nb"


def test_refusals_by_the_key_check_carry_the_request_id(hostile: RunningServer) -> None:
    with client(hostile) as anonymous, client(hostile, "minute") as minute:
        for _ in range(REQUESTS_PER_MINUTE):
            assert minute.get("/v1/models").status_code == 200
        for http, status, code in [
            (anonymous, 401, "unauthorized"),
            (minute, 429, "rate_limited"),
        ]:
            generated = http.post("/api/tts", json={"text": "Hi."})
            assert (generated.status_code, generated.json()["code"]) == (status, code)
            assert generated.json()["request_id"]
            assert generated.json()["request_id"] == generated.headers.get("x-request-id")
            chosen = http.post(
                "/api/tts", json={"text": "Hi."}, headers={"x-request-id": "abc-123"}
            )
            assert chosen.status_code == status
            assert chosen.json()["request_id"] == "abc-123"
            assert chosen.headers.get("x-request-id") == "abc-123"


def test_binary_frames_before_stt_start_are_rate_limited(hostile: RunningServer) -> None:
    with ws(hostile, "stray") as c:
        for _ in range(300):
            c.send(b"\x00\x00")
        codes = [json.loads(c.recv(timeout=10))["code"] for _ in range(300)]
    # Each stray frame is a message: the key's requests a minute run out first here.
    passed = codes.index("rate_limited")
    assert passed == REQUESTS_PER_MINUTE
    assert codes == ["unsupported_frame"] * passed + ["rate_limited"] * (300 - passed)


def test_a_stream_that_gets_no_audio_idles_out(hostile: RunningServer) -> None:
    with ws(hostile, "quiet") as c:
        c.send(json.dumps({"type": "stt_start", "id": "mute"}))
        assert json.loads(c.recv(timeout=10))["type"] == "stt_started"
        frame = json.loads(c.recv(timeout=10))  # WS_IDLE_SECONDS is 2
        assert (frame["type"], frame["code"]) == ("error", "idle_timeout")
        with pytest.raises(ConnectionClosed):
            c.recv(timeout=10)
    assert c.close_code == 1000


def test_an_origin_with_another_scheme_is_foreign(hostile: RunningServer) -> None:
    with ws(hostile, "browser", origin=f"https://127.0.0.1:{hostile.port}") as c:
        with contextlib.suppress(ConnectionClosed):  # served, it would answer this at once
            c.send(json.dumps({"type": "cancel", "id": "probe"}))
        frame = json.loads(c.recv(timeout=10))
        assert frame["code"] == "forbidden_origin", frame
        with pytest.raises(ConnectionClosed):
            c.recv(timeout=10)
    assert c.close_code == 1008
    with ws(hostile, "browser", origin=f"http://127.0.0.1:{hostile.port}") as c:
        c.send(json.dumps({"type": "text", "text": "Same origin."}))
        assert json.loads(c.recv(timeout=60))["type"] == "audio"
