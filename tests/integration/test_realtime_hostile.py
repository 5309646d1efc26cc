"""The Realtime API against hostile and careless clients with a valid key: every bad event
gets an `error` event and the connection keeps working; keys, secrets and quotas hold."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from openai import AsyncOpenAI

from entrypoints.bootstrap import Container
from entrypoints.settings import Settings
from tests.integration.conftest import RunningServer, sharing_models
from tests.integration.fake_llm import FakeLLM

KEY = "realtime-secret"


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM("Fine, thanks. And you?") as fake:
        yield fake


@pytest.fixture(scope="module")
def keyed(container: Container, llm: FakeLLM) -> Iterator[RunningServer]:
    settings = Settings(llm_base_url=llm.url, api_keys=(KEY,), tts_chars_per_day=60)
    with RunningServer(sharing_models(container, settings)) as running:
        yield running


def ws_url(server: RunningServer, query: str = "model=gpt-realtime") -> str:
    return f"ws://127.0.0.1:{server.port}/v1/realtime?{query}"


async def next_of(socket: Any, kind: str, wait: float = 30) -> dict[str, Any]:
    async with asyncio.timeout(wait):
        while True:
            event = json.loads(await socket.recv())
            if event["type"] == kind:
                return event  # type: ignore[no-any-return]


async def test_bad_events_get_errors_and_the_connection_keeps_working(
    keyed: RunningServer,
) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with websockets.connect(ws_url(keyed), additional_headers=headers) as socket:
        await next_of(socket, "session.created")
        bad: list[tuple[str | bytes, str]] = [
            ("not json", "invalid_request"),
            (b"\x00\x01binary", "invalid_request"),
            (json.dumps([1, 2]), "invalid_request"),
            (json.dumps({"type": "no.such.event"}), "invalid_request"),
            (json.dumps({"type": "input_audio_buffer.append", "audio": "!!!"}), "invalid_request"),
            (json.dumps({"type": "input_audio_buffer.append", "audio": 5}), "invalid_request"),
            (
                json.dumps({"type": "input_audio_buffer.append", "audio": "A" * 400_000}),
                "invalid_request",
            ),
            (json.dumps({"type": "session.update", "session": {"type": "transcription"}}),
             "invalid_value"),
            (json.dumps({"type": "session.update", "session": {"audio": {"input": {
                "format": {"type": "audio/pcm", "rate": 16000}}}}}), "invalid_value"),
            (json.dumps({"type": "session.update", "session": {"audio": {"input": {
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 10**9}}}}}),
             "invalid_value"),
            (json.dumps({"type": "session.update", "session": {"audio": {"output": {
                "voice": "../../etc/passwd"}}}}), "invalid_value"),
            (json.dumps({"type": "session.update", "session": {"instructions": "x" * 50_000}}),
             "invalid_value"),
            (json.dumps({"type": "session.update", "session": {"tools": [{"type": "function"}]}}),
             "invalid_value"),  # a tool needs its name
            (json.dumps({"type": "session.update", "session": {"tools": [{"type": "function",
                "name": "a", "parameters": {"type": "object"}}] * 129}}), "invalid_value"),
            (json.dumps({"type": "response.create", "response": {"tools": [{"name": "b c"}]}}),
             "invalid_value"),
            (json.dumps({"type": "conversation.item.create", "item": {"type": "function_call",
                "call_id": "c1"}}), "invalid_request"),  # no name
            (json.dumps({"type": "conversation.item.create", "item": {"role": "user", "content": [
                {"type": "input_audio", "audio": "AAAA"}]}}), "invalid_request"),
            (json.dumps({"type": "conversation.item.create", "item": {"role": "user", "content": [
                {"type": "input_text", "text": "y" * 30_000}]}}), "invalid_request"),
            (json.dumps({"type": "conversation.item.delete", "item_id": "x"}), "invalid_request"),
            (json.dumps({"type": "conversation.item.truncate", "item_id": "nope",
                         "content_index": 0, "audio_end_ms": 5}), "invalid_request"),
            (json.dumps({"type": "response.cancel"}), "invalid_request"),
            (json.dumps({"type": "response.create", "response": {"output_modalities": ["x"]}}),
             "invalid_request"),
            (json.dumps({"type": "response.create", "response": {  # OpenAI's bound: 16 pairs
                "metadata": {str(i): "x" for i in range(17)}}}), "invalid_request"),
            (json.dumps({"type": "response.create", "response": {
                "metadata": {"k": "x" * 513}}}), "invalid_request"),
            (json.dumps({"type": "input_audio_buffer.commit"}), "invalid_request"),
        ]  # fmt: skip
        for frame, code in bad:
            await socket.send(frame)
            error = await next_of(socket, "error")
            assert error["error"]["code"] == code, (frame[:80], error)
            assert error["error"]["message"]
        # Still usable: a text turn is answered.
        await socket.send(json.dumps({"type": "session.update", "session": {
            "output_modalities": ["text"]}}))  # fmt: skip
        await next_of(socket, "session.updated")
        await socket.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "How are you?"}]}}))  # fmt: skip
        await socket.send(json.dumps({"type": "response.create"}))
        done = await next_of(socket, "response.done")
        assert done["response"]["status"] == "completed"


async def test_no_key_no_connection_and_secrets_work_once(keyed: RunningServer) -> None:
    with pytest.raises(websockets.exceptions.ConnectionClosed):
        async with websockets.connect(ws_url(keyed)) as socket:
            error = await next_of(socket, "error")
            assert error["error"]["code"] == "unauthorized"
            await socket.recv()
    sdk = AsyncOpenAI(base_url=keyed.url + "/v1", api_key=KEY)
    secret = await sdk.realtime.client_secrets.create(
        session={"type": "realtime", "instructions": "Be brief."},
        expires_after={"anchor": "created_at", "seconds": 120},
    )
    assert secret.value.startswith("ek_") and secret.session.type == "realtime"
    browser = ["realtime", "openai-insecure-api-key." + secret.value]
    async with websockets.connect(ws_url(keyed), subprotocols=browser) as socket:  # type: ignore[arg-type]
        assert socket.subprotocol == "realtime"
        await next_of(socket, "session.created")
    with pytest.raises(websockets.exceptions.ConnectionClosed):  # a secret works once
        async with websockets.connect(ws_url(keyed), subprotocols=browser) as socket:  # type: ignore[arg-type]
            error = await next_of(socket, "error")
            assert error["error"]["code"] == "invalid_token"
            await socket.recv()
    ephemeral = AsyncOpenAI(base_url=keyed.url + "/v1", api_key=secret.value)
    async with ephemeral.realtime.connect(model="gpt-realtime") as connection:
        refusal = await connection.recv()  # spent, whichever way it is presented
        assert refusal.type == "error" and refusal.error.code == "invalid_token"
    async with httpx.AsyncClient(base_url=keyed.url) as http:
        refused = await http.post(
            "/v1/realtime/client_secrets",
            json={"expires_after": {"seconds": 10**6}},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    assert (
        refused.status_code == 400 and refused.json()["error"]["param"] == "expires_after.seconds"
    )


async def test_spoken_answers_are_charged_and_stop_at_the_quota(
    keyed: RunningServer, llm: FakeLLM
) -> None:
    """60 characters a day: the second spoken answer runs out and says so."""
    headers = {"Authorization": f"Bearer {KEY}"}
    async with websockets.connect(ws_url(keyed), additional_headers=headers) as socket:
        await next_of(socket, "session.created")
        statuses = []
        for _ in range(3):
            await socket.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "Hi"}]}}))  # fmt: skip
            await socket.send(json.dumps({"type": "response.create"}))
            done = await next_of(socket, "response.done")
            statuses.append(done["response"]["status"])
        failed = done["response"]["status_details"]
    assert statuses[0] == "completed" and statuses[-1] == "failed"
    assert failed["error"]["code"] == "rate_limited" and "day" in failed["error"]["message"]


async def test_the_beta_protocol_gets_the_beta_names(keyed: RunningServer) -> None:
    headers = {"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "realtime=v1"}
    async with websockets.connect(ws_url(keyed), additional_headers=headers) as socket:
        created = await next_of(socket, "session.created")
        assert created["session"]["input_audio_format"] == "pcm16"
        await socket.send(json.dumps({"type": "session.update", "session": {
            "modalities": ["text"], "input_audio_format": "g711_ulaw",
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 400}}}))  # fmt: skip
        updated = await next_of(socket, "session.updated")
        assert updated["session"]["input_audio_format"] == "g711_ulaw"
        assert updated["session"]["turn_detection"]["silence_duration_ms"] == 400
        await socket.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "Hi"}]}}))  # fmt: skip
        await next_of(socket, "conversation.item.created")
        await socket.send(json.dumps({"type": "response.create"}))
        delta = await next_of(socket, "response.text.delta")
        assert delta["delta"]
        await next_of(socket, "response.done")


async def test_a_failing_chat_model_fails_the_response_not_the_session(
    keyed: RunningServer, llm: FakeLLM
) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    llm.fail = True
    try:
        async with websockets.connect(ws_url(keyed), additional_headers=headers) as socket:
            await next_of(socket, "session.created")
            await socket.send(json.dumps({"type": "response.create", "response": {
                "output_modalities": ["text"]}}))  # fmt: skip
            done = await next_of(socket, "response.done")
            assert done["response"]["status"] == "failed"
            error = done["response"]["status_details"]["error"]
            assert error["code"] == "llm_failed" and "HTTP 500" in error["message"]
            llm.fail = False
            await socket.send(json.dumps({"type": "response.create", "response": {
                "output_modalities": ["text"]}}))  # fmt: skip
            again = await next_of(socket, "response.done")
            assert again["response"]["status"] == "completed"
    finally:
        llm.fail = False
