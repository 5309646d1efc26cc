"""API keys, one-time tokens, per-key quotas and the hardened WebSocket, on a real server."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import time
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings
from tests.integration.conftest import RunningServer, SteppedClock, midday_utc

KEYS = {
    name: f"{name}-k3y-{i:04d}-0123456789abcdef"
    for i, name in enumerate(["alice", "bob", "carol", "flood", "chatty", "listener", "socket"])
}


@pytest.fixture(scope="module")
def clock() -> SteppedClock:
    """The secured service's clock: it starts at midday, so no daily quota resets mid-test."""
    return SteppedClock(start=midday_utc())


@pytest.fixture(scope="module")
def secured(clock: SteppedClock) -> Iterator[RunningServer]:
    settings = Settings(
        api_keys=tuple(f"{name}:{key}" for name, key in KEYS.items()),
        rate_limit_per_minute=40,
        tts_chars_per_day=300,
        stt_seconds_per_day=20,
        connections_per_key=2,
        ws_max_connections=5,
        ws_idle_seconds=3,
        token_ttl_seconds=2,
        max_audio_seconds=60,
    )
    with RunningServer(bootstrap(settings, clock=clock)) as running:
        yield running


def client(server: RunningServer, name: str | None = None, **headers: str) -> httpx.Client:
    if name is not None:
        headers["authorization"] = f"Bearer {KEYS[name]}"
    return httpx.Client(base_url=server.url, headers=headers, timeout=60)


def ws(server: RunningServer, name: str | None = None, **options: Any) -> ClientConnection:
    headers = dict(options.pop("additional_headers", {}))
    if name is not None:
        headers["x-api-key"] = KEYS[name]
    connection: ClientConnection = connect(
        server.ws_url, max_size=None, additional_headers=headers, **options
    )
    return connection


def refused(connection: ClientConnection) -> tuple[dict[str, Any], int | None]:
    """The error frame a refused handshake gets, and the close code that follows."""
    frame = json.loads(connection.recv(timeout=10))
    with pytest.raises(ConnectionClosed):
        connection.recv(timeout=10)
    assert connection.close_code is not None
    return frame, connection.close_code


def wav_of_silence(seconds: float, rate: int = 16_000, channels: int = 1) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"\x00\x00" * channels * int(rate * seconds))
    return out.getvalue()


def test_open_routes_and_protected_ones(secured: RunningServer) -> None:
    with client(secured) as anonymous:
        assert anonymous.get("/health").status_code == 200
        assert anonymous.get("/").status_code == 200
        for path in ("/stats", "/metrics", "/v1/models"):
            response = anonymous.get(path)
            assert response.status_code == 401, path
        response = anonymous.post("/api/tts", json={"text": "hello"})
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
    with client(secured, "alice") as alice:
        assert alice.get("/stats").status_code == 200
        assert alice.get("/metrics").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": f"Bearer {KEYS['alice']}"},
        {"authorization": f"bearer {KEYS['alice']}"},
        {"x-api-key": KEYS["alice"]},
    ],
    ids=["bearer", "lowercase bearer", "x-api-key"],
)
def test_a_valid_key_is_accepted_either_way(
    secured: RunningServer, headers: dict[str, str]
) -> None:
    with client(secured, **headers) as c:
        assert c.post("/api/tts", json={"text": "Hi."}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer"},
        {"authorization": "Bearer wrong-key"},
        {"authorization": f"Basic {KEYS['alice']}"},
        {"authorization": f"Bearer {KEYS['alice']}x"},
        {"authorization": f"Bearer {KEYS['alice'][:-1]}"},
        {"x-api-key": "sha256:" + "0" * 64},
        {"x-api-key": KEYS["alice"].upper()},
    ],
    ids=["none", "empty", "wrong", "basic scheme", "suffix", "prefix", "digest", "case"],
)
def test_bad_keys_get_401(secured: RunningServer, headers: dict[str, str]) -> None:
    with client(secured, **headers) as c:
        response = c.post("/api/tts", json={"text": "Hi."})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_openai_routes_answer_401_in_their_shape_or_ours(secured: RunningServer) -> None:
    with client(secured) as anonymous:
        response = anonymous.post("/v1/audio/speech", json={"input": "hi", "voice": "alloy"})
    assert response.status_code == 401
    body = response.json()
    assert body.get("code") == "unauthorized" or body["error"]["code"] == "unauthorized"


def test_websocket_with_a_key_in_the_handshake(secured: RunningServer) -> None:
    with ws(secured, "alice") as c:
        c.send(json.dumps({"type": "text", "text": "Hello."}))
        assert json.loads(c.recv(timeout=60))["type"] == "audio"
    with ws(secured, additional_headers={"authorization": f"Bearer {KEYS['bob']}"}) as c:
        c.send(json.dumps({"type": "text", "text": "Hello."}))
        assert json.loads(c.recv(timeout=60))["type"] == "audio"


@pytest.mark.parametrize(
    "options",
    [{}, {"additional_headers": {"x-api-key": "nope"}}, {"subprotocols": ["voicepipe"]}],
    ids=["no key", "bad key", "subprotocol without token"],
)
def test_websocket_without_a_valid_key_closes_1008(
    secured: RunningServer, options: dict[str, Any]
) -> None:
    with ws(secured, **options) as c:
        frame, code = refused(c)
    assert frame["type"] == "error" and frame["code"] == "unauthorized"
    assert code == 1008


def token_for(server: RunningServer, name: str) -> str:
    with client(server, name) as c:
        response = c.post("/api/token")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in"] == 2 and body["subprotocols"] == [
        "voicepipe",
        f"token.{body['token']}",
    ]
    return str(body["token"])


def test_browser_token_works_once(secured: RunningServer) -> None:
    token = token_for(secured, "alice")
    assert KEYS["alice"] not in token
    with ws(secured, subprotocols=["voicepipe", f"token.{token}"]) as c:
        assert c.subprotocol == "voicepipe"
        c.send(json.dumps({"type": "text", "text": "Token works."}))
        assert json.loads(c.recv(timeout=60))["type"] == "audio"
    with ws(secured, subprotocols=["voicepipe", f"token.{token}"]) as replay:
        frame, code = refused(replay)
    assert (frame["code"], code) == ("invalid_token", 1008)
    assert "already used" in frame["message"]


def test_expired_tampered_and_malformed_tokens_close_1008(
    secured: RunningServer, clock: SteppedClock
) -> None:
    expired = token_for(secured, "alice")
    tampered = token_for(secured, "alice")
    key_id, expiry, nonce, scope, signature = tampered.split(".")
    forged = f"{key_id}.{int(expiry) + 3600}.{nonce}.{scope}.{signature}"
    clock.advance(3)  # past the 2 s lifetime, without waiting for it
    for token, words in [
        (expired, "expired"),
        (forged, "not valid"),
        ("garbage", "malformed"),
        (f"{key_id}.x.{nonce}.{scope}.{signature}", "malformed"),
    ]:
        with ws(secured, subprotocols=["voicepipe", f"token.{token}"]) as c:
            frame, code = refused(c)
        assert (frame["code"], code) == ("invalid_token", 1008), token
        assert words in frame["message"]


def test_token_needs_a_key(secured: RunningServer) -> None:
    with client(secured) as anonymous:
        assert anonymous.post("/api/token").status_code == 401


def test_foreign_origin_is_refused_and_own_origin_allowed(secured: RunningServer) -> None:
    with ws(secured, "alice", origin="http://evil.example") as c:
        frame, code = refused(c)
    assert (frame["code"], code) == ("forbidden_origin", 1008)
    own = f"http://127.0.0.1:{secured.port}"
    with ws(secured, "alice", origin=own) as c:
        c.send(json.dumps({"type": "text", "text": "Same origin."}))
        assert json.loads(c.recv(timeout=60))["type"] == "audio"


def served_once_the_slot_is_free(
    server: RunningServer, name: str, seconds: float = 10.0
) -> ClientConnection:
    """A closed connection's slot is free once the server has seen the close (soon, not at
    once): retried until a new connection is served, for far less than the slots' TTL."""
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.ExitStack() as attempt:
            connection = attempt.enter_context(ws(server, name))
            with contextlib.suppress(ConnectionClosed):  # a refused one may be closed already
                connection.send(json.dumps({"type": "text", "text": "Back."}))
            frame = json.loads(connection.recv(timeout=60))
            if frame["type"] == "audio":
                attempt.pop_all()  # served: the caller closes it
                return connection
        assert frame["code"] == "rate_limited" and time.monotonic() < deadline, frame
        time.sleep(0.02)


def test_connections_are_limited_per_key_and_in_total(secured: RunningServer) -> None:
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(ws(secured, "socket"))
        stack.enter_context(ws(secured, "socket"))
        with ws(secured, "socket") as third:
            frame, code = refused(third)
        assert (frame["code"], code) == ("rate_limited", 1008)
        first.close()
        stack.enter_context(served_once_the_slot_is_free(secured, "socket"))
        for name in ("carol", "carol", "bob"):
            stack.enter_context(ws(secured, name))
        with ws(secured, "alice") as over:  # 2 socket + 2 carol + 1 bob open: 5 in total
            frame, code = refused(over)
        assert (frame["code"], code) == ("too_many_connections", 1008)


def test_idle_connections_are_closed(secured: RunningServer) -> None:
    with ws(secured, "alice") as c:
        frame = json.loads(c.recv(timeout=10))
        assert frame["code"] == "idle_timeout"
        with pytest.raises(ConnectionClosed):
            c.recv(timeout=10)
        assert c.close_code == 1000


OVER = "This sentence is long enough to pass the daily quota for sure."


def test_characters_per_day_are_a_quota(secured: RunningServer) -> None:
    with client(secured, "chatty") as chatty, client(secured, "bob") as bob:
        alone = chatty.post("/api/tts", json={"text": "x" * 301})
        assert alone.status_code == 429 and "alone" in alone.json()["message"]
        assert chatty.post("/api/tts", json={"text": "A" * 250}).status_code == 200
        over = chatty.post("/api/tts", json={"text": OVER})
        assert over.status_code == 429
        assert over.json()["code"] == "rate_limited" and "characters" in over.json()["message"]
        assert 0 < int(over.headers["retry-after"]) <= 86_400
        assert bob.post("/api/tts", json={"text": "Bob is fine."}).status_code == 200
    with ws(secured, "chatty") as c:
        c.send(json.dumps({"type": "text", "text": OVER}))
        frame = json.loads(c.recv(timeout=10))
        assert frame["type"] == "error" and frame["code"] == "rate_limited"
        c.send(json.dumps({"type": "nope"}))  # the connection still answers
        assert json.loads(c.recv(timeout=10))["code"] == "unknown_message_type"


def test_audio_seconds_per_day_are_a_quota(secured: RunningServer) -> None:
    clip = wav_of_silence(15)
    with client(secured, "listener") as listener:
        # The limit is 20 s: 15 s pass; the next 15 s would pass it, so they are refused before
        # the model runs (reserved once decoded), where they used to be charged after.
        for expected in (200, 429, 429):
            response = listener.post("/api/stt", files={"file": ("a.wav", clip)})
            assert response.status_code == expected, response.text
        assert "audio seconds" in response.json()["message"]
        short = listener.post("/api/stt", files={"file": ("b.wav", wav_of_silence(5))})
        assert short.status_code == 200  # exactly the 5 s that are left


def test_audio_that_decodes_to_too_much_is_refused_early(secured: RunningServer) -> None:
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="flac") as container:  # 10 minutes of silence: ~60 KB
        stream = container.add_stream("flac", rate=8000, layout="mono")
        frame = av.AudioFrame(format="s16", layout="mono", samples=8000)
        frame.planes[0].update(b"\x00\x00" * 8000)
        frame.sample_rate = 8000
        for i in range(600):
            frame.pts = i * 8000
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    bomb = out.getvalue()
    assert len(bomb) < 200_000
    with client(secured, "alice") as alice:
        response = alice.post("/api/stt", files={"file": ("bomb.flac", bomb)})
    assert response.status_code == 413 and response.json()["code"] == "audio_too_long"
    # Decoding stopped at the limit: the whole file decoded would be "audio lasts 600.0 s".
    assert "longer than 60 s" in response.json()["message"], response.json()
    for clip, words in [
        (wav_of_silence(0.5, channels=12), "channels"),
        (wav_of_silence(0.5, rate=384_000), "sample rate"),
    ]:
        with client(secured, "alice") as alice:
            response = alice.post("/api/stt", files={"file": ("odd.wav", clip)})
        assert response.status_code == 400 and response.json()["code"] == "invalid_audio"
        assert words in response.json()["message"]


def test_flooding_one_key_leaves_the_others_alone(secured: RunningServer) -> None:
    """200 requests at once on one key (limit 40 a minute) while another key works normally."""

    async def run() -> tuple[list[int], list[int], list[str]]:
        flood_headers = {"authorization": f"Bearer {KEYS['flood']}"}
        bob_headers = {"authorization": f"Bearer {KEYS['bob']}"}
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=secured.url, timeout=60, limits=limits) as c:

            async def bob_steady() -> list[int]:
                statuses = []
                for _ in range(10):
                    r = await c.get("/v1/models", headers=bob_headers)
                    statuses.append(r.status_code)
                    await asyncio.sleep(0.05)
                return statuses

            flood = [c.get("/v1/models", headers=flood_headers) for _ in range(200)]
            bob_statuses, flood_responses = await asyncio.gather(
                bob_steady(), asyncio.gather(*flood)
            )
        flood_statuses = [r.status_code for r in flood_responses]
        return (
            bob_statuses,
            flood_statuses,
            [r.headers.get("retry-after", "") for r in flood_responses if r.status_code == 429],
        )

    bob, flood, retry_after = asyncio.run(run())
    assert bob == [200] * 10
    assert flood.count(200) == 40 and flood.count(429) == 160
    assert all(0 < int(value) <= 60 for value in retry_after)


def test_keys_never_reach_the_logs(
    secured: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with client(secured, "alice") as alice:
        alice.post("/api/tts", json={"text": "Log me not."})
        alice.get("/stats")
    with client(secured, **{"x-api-key": "a-wrong-key-that-must-not-be-logged"}) as wrong:
        wrong.get("/stats")
    text = caplog.text
    assert KEYS["alice"] not in text and "a-wrong-key-that-must-not-be-logged" not in text
    assert "Log me not" not in text


def test_settings_refuse_negative_limits() -> None:
    from entrypoints.settings import SettingsError

    with pytest.raises(SettingsError, match="RATE_LIMIT_PER_MINUTE"):
        Settings.from_env({"RATE_LIMIT_PER_MINUTE": "-1"})
    assert Settings.from_env({"RETAIN_CONTENT": "true"}).retain_content is True
    with pytest.raises(SettingsError, match="RETAIN_CONTENT"):
        Settings.from_env({"RETAIN_CONTENT": "maybe"})
    assert msgspec.structs.replace(Settings(), public_stats=True).public_stats


def client_secret(server: RunningServer, name: str) -> str:
    with client(server, name) as c:
        response = c.post("/v1/realtime/client_secrets", json={})
    assert response.status_code == 200, response.text
    value = str(response.json()["value"])
    assert value.startswith("ek_")
    return value


def realtime(server: RunningServer, credential: str) -> ClientConnection:
    url = server.ws_url.replace("/ws/voice", "/v1/realtime?model=gpt-realtime")
    offered = ["realtime", f"openai-insecure-api-key.{credential}"]
    connection: ClientConnection = connect(url, subprotocols=offered)  # type: ignore[arg-type]
    return connection


def test_a_client_secret_opens_one_realtime_connection_and_nothing_else(
    secured: RunningServer,
) -> None:
    """`ek_…` from POST /v1/realtime/client_secrets opens /v1/realtime, once; offered as a
    one-time token to /ws/voice or /v1/listen it is refused (and not spent there)."""
    secret = client_secret(secured, "alice")
    token = secret.removeprefix("ek_")
    with ws(secured, subprotocols=["voicepipe", f"token.{token}"]) as voice:
        frame, code = refused(voice)
    assert (frame["code"], code) == ("invalid_token", 1008), frame
    listen_url = secured.ws_url.replace("/ws/voice", "/v1/listen")
    with connect(listen_url, subprotocols=[f"token.{token}"]) as listen:  # type: ignore[list-item]
        error = json.loads(listen.recv(timeout=10))
        with pytest.raises(ConnectionClosed):
            listen.recv(timeout=10)
    assert (error["code"], listen.close_code) == ("invalid_token", 1008), error
    with realtime(secured, secret) as opened:
        assert json.loads(opened.recv(timeout=10))["type"] == "session.created"
    with realtime(secured, secret) as again:
        error = json.loads(again.recv(timeout=10))
        with pytest.raises(ConnectionClosed):
            again.recv(timeout=10)
    assert error["error"]["code"] == "invalid_token" and "already used" in str(error)


def test_a_socket_token_still_opens_the_voice_socket_and_realtime(
    secured: RunningServer,
) -> None:
    with ws(secured, subprotocols=["voicepipe", f"token.{token_for(secured, 'bob')}"]) as c:
        c.send(json.dumps({"type": "text", "text": "Scoped."}))
        assert json.loads(c.recv(timeout=60))["type"] == "audio"
    with realtime(secured, "ek_" + token_for(secured, "bob")) as opened:
        assert json.loads(opened.recv(timeout=10))["type"] == "session.created"
