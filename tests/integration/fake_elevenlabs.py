"""A fake ElevenLabs on loopback that speaks the HTTP protocol the official SDK uses.

It returns real audio (Piper speech encoded as mp3 or raw PCM, as `output_format` asks) and
can misbehave on demand: `mode` picks the scenario for every call that follows.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import uvicorn
from litestar import Litestar, Request, Response, get, post
from litestar.response import Stream

from adapters.pyav_codec import PyAVAudioCodec
from domain.speech import AudioClip, AudioFormat
from tests.integration.speech import piper

API_KEY = "test-key"
VOICES = {"JBFqnCBsd6RMkjVDRZzb": "George", "21m00Tcm4TlvDq8AikWAM": "Rachel"}
MODES = ("ok", "error500", "rate_limit", "hang", "cut", "malformed", "flaky500")


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response(
        {"detail": {"status": code, "message": message}}, status_code=status, headers=headers
    )


class FakeElevenLabs:
    """Scenario switch plus call log; runs uvicorn in a thread like the real service tests."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.calls: list[tuple[str, str]] = []  # (path, mode when served)
        self.gain_db = 0.0
        self.failures_left = 0
        self.hang_seconds = 30.0
        app = Litestar(
            route_handlers=[self._stream_route(), self._voice_route()], logging_config=None
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> FakeElevenLabs:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def tts_calls(self) -> int:
        return sum(1 for path, _ in self.calls if "/text-to-speech/" in path)

    def _authorized(self, request: Request[Any, Any, Any]) -> bool:
        return request.headers.get("xi-api-key") == API_KEY

    def _voice_route(self) -> Any:
        fake = self

        @get("/v1/voices/{voice_id:str}")
        async def voice(request: Request[Any, Any, Any]) -> Response[Any]:
            voice_id = request.path_params["voice_id"]
            fake.calls.append((request.url.path, fake.mode))
            if not fake._authorized(request):
                return _error(401, "invalid_api_key", "Invalid API key")
            if voice_id not in VOICES:
                return _error(404, "voice_not_found", "A voice with this id was not found.")
            return Response({"voice_id": voice_id, "name": VOICES[voice_id], "category": "premade"})

        return voice

    def _stream_route(self) -> Any:
        fake = self

        @post("/v1/text-to-speech/{voice_id:str}/stream", status_code=200)
        async def stream(request: Request[Any, Any, Any]) -> Response[Any] | Stream:
            voice_id = request.path_params["voice_id"]
            mode = fake.mode
            fake.calls.append((request.url.path, mode))
            if not fake._authorized(request):
                return _error(401, "invalid_api_key", "Invalid API key")
            if voice_id not in VOICES:
                return _error(404, "voice_not_found", "A voice with this id was not found.")
            body = await request.json()
            output_format = request.query_params.get("output_format") or "mp3_44100_128"
            if mode == "flaky500" and fake.failures_left > 0:
                fake.failures_left -= 1
                return _error(500, "internal_error", "try again")
            if mode == "error500":
                return _error(500, "internal_error", "Something went wrong")
            if mode == "rate_limit" and fake.failures_left > 0:
                fake.failures_left -= 1
                return _error(
                    429, "too_many_concurrent_requests", "slow down", {"Retry-After": "1"}
                )
            if mode == "hang":
                await asyncio.sleep(fake.hang_seconds)
            if mode == "malformed":
                return Response(b"<html>this is not audio</html>" * 20, media_type="audio/mpeg")
            audio = await fake._speak(str(body["text"]), output_format)
            chunks = [audio[i : i + 4096] for i in range(0, len(audio), 4096)]
            return Stream(fake._chunks(chunks, cut=mode == "cut"), media_type="audio/mpeg")

        return stream

    async def _chunks(self, chunks: list[bytes], *, cut: bool) -> AsyncIterator[bytes]:
        for i, chunk in enumerate(chunks):
            if cut and i >= len(chunks) // 2:
                raise ConnectionResetError("stream cut off half-way")  # uvicorn drops the socket
            yield chunk
            await asyncio.sleep(0)

    async def _speak(self, text: str, output_format: str) -> bytes:
        voice = piper()
        clip = await voice.synthesize(text, voice.default_voice)
        if self.gain_db:
            samples = np.frombuffer(clip.pcm, dtype="<i2").astype(np.float64)
            samples *= 10 ** (self.gain_db / 20)
            clip = AudioClip(
                np.clip(samples, -32768, 32767).astype("<i2").tobytes(), clip.sample_rate
            )
        codec = PyAVAudioCodec()
        if output_format.startswith("pcm_"):
            rate = int(output_format.split("_")[1])
            wav = await codec.encode(clip, AudioFormat.WAV)
            return (await codec.decode(wav, rate)).pcm
        return await codec.encode(clip, AudioFormat.MP3)
