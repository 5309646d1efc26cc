"""Wyoming (Home Assistant's voice protocol) next to the HTTP service: `WYOMING_URI` turns it
on; `WYOMING_ZEROCONF` advertises it for discovery. Each client is served by the connection
core, as every other protocol's."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any
from urllib.parse import urlsplit

import structlog

from entrypoints import wiring
from entrypoints.bootstrap import Container
from entrypoints.wyoming.channel import MAX_HEADER_BYTES, WyomingChannel
from entrypoints.wyoming.handler import WyomingDialect

log = structlog.get_logger(__name__)


class WyomingService:
    """Started, drained and stopped with the container (in the app's event loop)."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.where = urlsplit(container.settings.wyoming_uri or "")
        self.server: asyncio.Server | None = None
        self._advertiser: Any = None

    def attach(self) -> None:
        self.container.on_start.append(self.start)
        self.container.on_drain.append(self.stop_listening)
        self.container.on_stop.insert(0, self.stop)

    @property
    def port(self) -> int:
        sockets = self.server.sockets if self.server is not None else []
        return int(sockets[0].getsockname()[1]) if sockets else 0

    async def start(self) -> None:
        limit = MAX_HEADER_BYTES + 1  # a longer header line is refused, not buffered
        if self.where.scheme == "unix":
            self.server = await asyncio.start_unix_server(self._serve, self.where.path, limit=limit)
        else:
            host, port = self.where.hostname, self.where.port
            self.server = await asyncio.start_server(self._serve, host, port, limit=limit)
        log.info("wyoming listening", uri=self.where.geturl(), port=self.port)
        name = self.container.settings.wyoming_zeroconf
        if name and self.where.scheme == "tcp":
            self._advertiser = wiring.advertiser(name)
            await self._advertiser.start(self.where.hostname or "0.0.0.0", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        channel = WyomingChannel(reader, writer, self.container.listen.limits.max_frame_bytes)
        connection_id = uuid.uuid4().hex[:12]
        structlog.contextvars.bind_contextvars(connection_id=connection_id)
        log.info("connection opened", protocol="wyoming")
        try:
            dialect = WyomingDialect(self.container)
            await self.container.connections.serve(
                channel, dialect, None, connection_id=connection_id
            )
        finally:
            log.info("connection closed", protocol="wyoming")
            await channel.close(1000, "")

    async def stop_listening(self) -> None:
        """Shutting down: no new clients (those connected say their last words)."""
        if self.server is not None:
            self.server.close()

    async def stop(self) -> None:
        if self._advertiser is not None:
            await self._advertiser.stop()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), 10)
