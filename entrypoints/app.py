"""The Litestar application: routes, error handlers, middleware, and how uvicorn serves it."""

from __future__ import annotations

import socket
from pathlib import Path

import uvicorn
from litestar import Litestar, MediaType, get
from litestar.datastructures import State
from litestar.response import File
from litestar.static_files import create_static_files_router

from entrypoints import ops
from entrypoints.bootstrap import Container
from entrypoints.deepgram.live import max_frame_bytes as deepgram_frame_bytes
from entrypoints.deepgram.routes import deepgram_router
from entrypoints.errors import EXCEPTION_HANDLERS
from entrypoints.flux.socket import flux_router
from entrypoints.openai.routes import openai_router
from entrypoints.realtime.routes import max_frame_bytes as realtime_frame_bytes
from entrypoints.realtime.routes import realtime_router
from entrypoints.request_context import RequestContext
from entrypoints.security import guarded
from entrypoints.settings import Settings
from entrypoints.shutdown_answers import ShutdownAnswers
from entrypoints.speak.routes import speak_router
from entrypoints.speak.socket import max_frame_bytes as speak_frame_bytes
from entrypoints.tracing import traced
from entrypoints.usage import usage
from entrypoints.v1 import rest
from entrypoints.v1 import socket as v1_socket
from entrypoints.websocket import bounded_protocol

STATIC = Path(__file__).parent / "static"


@get("/", media_type=MediaType.HTML, include_in_schema=False)
async def playground() -> File:
    return File(STATIC / "index.html", content_disposition_type="inline")


static_files = create_static_files_router(path="/static", directories=[STATIC])


def max_frame_bytes(max_audio_bytes: int) -> int:
    """Largest HTTP body or WebSocket frame accepted before any parsing."""
    return max_audio_bytes * 2 + 1024 * 1024


def frame_bounds(settings: Settings) -> dict[str, int]:
    """Each WebSocket route's largest frame: what its biggest message can need."""
    return {
        "/ws/voice": max_frame_bytes(settings.max_audio_bytes),
        "/v1/realtime": realtime_frame_bytes(),
        "/v1/listen": deepgram_frame_bytes(),
        "/v2/listen": deepgram_frame_bytes(),  # Flux: the same audio frames
        "/v1/speak": speak_frame_bytes(settings.max_text_chars),
    }


def server_config(app: Litestar, settings: Settings) -> uvicorn.Config:
    """How uvicorn serves the app, for `voicepipe serve` and the tests alike."""
    return uvicorn.Config(
        RequestContext(ShutdownAnswers(app)),  # ids and access lines for 404s and 503s too
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        ws_max_size=max_frame_bytes(settings.max_audio_bytes),
        ws=bounded_protocol(frame_bounds(settings)),
        # Compressing base64 audio saves ~25% of bytes for ~80% of the CPU: not worth it.
        ws_per_message_deflate=False,
        # Keepalive: a peer that stops answering pings is dropped, its slot freed.
        ws_ping_interval=settings.ws_ping_seconds,
        ws_ping_timeout=settings.ws_ping_seconds,
        timeout_graceful_shutdown=10,
    )


class DrainingServer(uvicorn.Server):
    """uvicorn that lets WebSocket clients finish what is in flight before it closes them."""

    drain_seconds = 5.0

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new connections while the old ones finish
        app = self.config.loaded_app
        while not isinstance(app, Litestar) and hasattr(app, "app"):
            app = app.app
        if isinstance(app, Litestar):
            await app.state.container.drain(self.drain_seconds)
        await super().shutdown(sockets)


def create_app(container: Container) -> Litestar:
    settings = container.settings
    # Base64 inflates audio by 4/3; the margin lets a slightly oversized upload reach the
    # audio size check and its specific `audio_too_large` error.
    max_body = max_frame_bytes(settings.max_audio_bytes)
    telemetry = container.telemetry
    telemetry.connections = container.connections.__len__
    tracing = [traced(telemetry.tracer, telemetry.recording)] if telemetry.enabled else []
    return Litestar(
        route_handlers=[
            *rest.ROUTES,
            *ops.ROUTES,
            v1_socket.voice_socket,
            playground,
            static_files,
            openai_router,
            realtime_router,
            deepgram_router,
            flux_router,
            speak_router,
            usage,
        ],
        state=State({"container": container}),
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=[*tracing, guarded(container.admission, settings)],
        request_max_body_size=max_body,
        on_startup=[container.start],
        on_shutdown=[container.stop],
        logging_config=None,  # logging is configured once, by structlog
        debug=False,
    )
