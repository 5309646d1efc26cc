"""Wyoming (Home Assistant's voice protocol) next to the HTTP service: `WYOMING_URI` turns it
on; `WYOMING_ZEROCONF` advertises it for discovery."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from entrypoints import wiring
from entrypoints.container import Container
from entrypoints.tcp import TcpListener
from entrypoints.wyoming.channel import MAX_HEADER_BYTES, WyomingChannel
from entrypoints.wyoming.handler import WyomingDialect

log = structlog.get_logger(__name__)


class WyomingService(TcpListener):
    """Started, drained and stopped with the container (in the app's event loop)."""

    def __init__(self, container: Container) -> None:
        uri = container.settings.wyoming_uri or ""
        super().__init__(container, uri, self._opened, line_limit=MAX_HEADER_BYTES)
        self._advertiser: Any = None

    def attach(self) -> None:
        self.container.on_start.append(self.start)
        self.container.on_drain.append(self.stop_listening)
        self.container.on_stop.insert(0, self.stop)

    def _opened(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
        limit = self.container.listen.limits.max_frame_bytes
        return WyomingChannel(reader, writer, limit), WyomingDialect(self.container)

    async def start(self) -> None:
        await super().start()
        log.info("wyoming listening", uri=self.where.geturl(), port=self.port)
        name = self.container.settings.wyoming_zeroconf
        if name and self.where.scheme == "tcp":
            self._advertiser = wiring.advertiser(name)
            await self._advertiser.start(self.where.hostname or "0.0.0.0", self.port)

    async def stop(self) -> None:
        if self._advertiser is not None:
            await self._advertiser.stop()
        await super().stop()
