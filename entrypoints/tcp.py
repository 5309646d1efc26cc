"""A TCP (or Unix socket) listener whose clients the connection core serves: started, told
to stop accepting at the drain, and stopped with the container."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import structlog

from application.connections import Dialect
from application.ports import Channel
from entrypoints.container import Container

log = structlog.get_logger(__name__)

Opened = Callable[
    [asyncio.StreamReader, asyncio.StreamWriter], tuple[Channel[Any, Any], Dialect[Any, Any, Any]]
]


class TcpListener:
    """`uri`: tcp://HOST:PORT or unix://PATH. `opened` frames a new client's stream and names
    its dialect; its clients have no credential (the anonymous principal)."""

    def __init__(self, container: Container, uri: str, opened: Opened, *, line_limit: int) -> None:
        self.container = container
        self.where = urlsplit(uri)
        self.opened = opened
        self.line_limit = line_limit
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        sockets = self.server.sockets if self.server is not None else []
        return int(sockets[0].getsockname()[1]) if sockets else 0

    async def start(self) -> None:
        serve, limit = self._serve, self.line_limit + 1  # a longer line is refused, not buffered
        if self.where.scheme == "unix":
            self.server = await asyncio.start_unix_server(serve, self.where.path, limit=limit)
        else:
            host, port = self.where.hostname, self.where.port
            self.server = await asyncio.start_server(serve, host, port, limit=limit)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        channel, dialect = self.opened(reader, writer)
        connection_id = uuid.uuid4().hex[:12]
        structlog.contextvars.bind_contextvars(connection_id=connection_id)
        log.info("connection opened", protocol=dialect.name)
        try:
            await self.container.connections.serve(
                channel, dialect, None, connection_id=connection_id
            )
        finally:
            log.info("connection closed", protocol=dialect.name)
            await channel.close(1000, "")

    async def stop_listening(self) -> None:
        """Shutting down: no new clients (those connected say their last words)."""
        if self.server is not None:
            self.server.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await self.server.wait_closed()
