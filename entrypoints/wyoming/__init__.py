"""Wyoming (Home Assistant's voice protocol) next to the HTTP service: `WYOMING_URI` turns it
on; `WYOMING_ZEROCONF` advertises it for discovery."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from typing import Any
from urllib.parse import urlsplit

import structlog

from entrypoints.bootstrap import Container
from entrypoints.wyoming.channel import MAX_HEADER_BYTES, WyomingChannel
from entrypoints.wyoming.handler import WyomingDialect

log = structlog.get_logger(__name__)


class WyomingService:
    """Started and stopped with the container (in the app's event loop)."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.uri = container.settings.wyoming_uri or ""
        self.server: asyncio.Server | None = None
        self._zeroconf: Any = None

    def attach(self) -> None:
        self.container.on_start.append(self.start)
        self.container.on_drain.append(self.stop_listening)
        self.container.on_stop.insert(0, self.stop)

    @property
    def port(self) -> int:
        sockets = self.server.sockets if self.server is not None else []
        return int(sockets[0].getsockname()[1]) if sockets else 0

    async def start(self) -> None:
        where = urlsplit(self.uri)
        limit = MAX_HEADER_BYTES + 1  # a longer header line is refused, not buffered
        if where.scheme == "unix":
            self.server = await asyncio.start_unix_server(self._serve, where.path, limit=limit)
        else:
            self.server = await asyncio.start_server(
                self._serve, where.hostname, where.port, limit=limit
            )
        log.info("wyoming listening", uri=self.uri, port=self.port)
        name = self.container.settings.wyoming_zeroconf
        if name and where.scheme == "tcp":
            await self._advertise(name)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client, for as long as it stays: the connection core runs it."""
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

    async def _advertise(self, name: str) -> None:
        """`_wyoming._tcp` for Home Assistant's discovery, on the interface Wyoming listens on
        (all of them for 0.0.0.0)."""
        from zeroconf import InterfaceChoice, IPVersion
        from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

        host = urlsplit(self.uri).hostname or "0.0.0.0"
        everywhere = host in ("0.0.0.0", "::")
        address = _outward_address() if everywhere else socket.gethostbyname(host)
        try:
            self._zeroconf = AsyncZeroconf(
                interfaces=InterfaceChoice.All if everywhere else [address],
                ip_version=IPVersion.V4Only,
            )
            service = AsyncServiceInfo(
                "_wyoming._tcp.local.",
                f"{name}._wyoming._tcp.local.",
                addresses=[socket.inet_aton(address)],
                port=self.port,
                server=f"{name}.local.",
            )
            await self._zeroconf.async_register_service(service)
            log.info("wyoming advertised", name=name, address=address, service="_wyoming._tcp")
        except OSError as error:  # no multicast here: serve anyway, and say why
            log.warning("zeroconf advertisement failed", reason=str(error))

    async def stop(self) -> None:
        if self._zeroconf is not None:
            with contextlib.suppress(Exception):
                await self._zeroconf.async_unregister_all_services()
                await self._zeroconf.async_close()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), 10)


def _outward_address() -> str:
    """The address other machines reach this one at (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("224.0.0.251", 5353))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"
