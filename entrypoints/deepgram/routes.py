"""Deepgram-compatible speech to text: POST /v1/listen (prerecorded) and WebSocket
/v1/listen (live), over the same transcription and listening sessions as every transport.

Errors use Deepgram's REST shape ({"err_code", "err_msg", "request_id"}) so its SDKs raise
their usual exceptions.
"""

from __future__ import annotations

from litestar import Router

from entrypoints.deepgram.live import listen_socket
from entrypoints.deepgram.prerecorded import listen_file
from entrypoints.errors import EXCEPTION_HANDLERS

deepgram_router = Router(
    path="/v1",
    route_handlers=[listen_file, listen_socket],
    # Errors in Deepgram's shape: the app's handler answers by the path.
    exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
)

__all__ = ["deepgram_router"]
