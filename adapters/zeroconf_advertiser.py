"""Zeroconf (mDNS) discovery of the Wyoming service, as Home Assistant looks for it."""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

log = logging.getLogger(__name__)


class ZeroconfAdvertiser:
    """`_wyoming._tcp` under `name`, on the interface the service listens on (all of them for
    0.0.0.0). A machine without multicast still serves: the failure is logged, not raised."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._zeroconf: Any = None

    async def start(self, host: str, port: int) -> None:
        from zeroconf import InterfaceChoice, IPVersion
        from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

        everywhere = host in ("0.0.0.0", "::", "")
        address = _outward_address() if everywhere else socket.gethostbyname(host)
        name = self.name
        try:
            self._zeroconf = AsyncZeroconf(
                interfaces=InterfaceChoice.All if everywhere else [address],
                ip_version=IPVersion.V4Only,
            )
            service = AsyncServiceInfo(
                "_wyoming._tcp.local.",
                f"{name}._wyoming._tcp.local.",
                addresses=[socket.inet_aton(address)],
                port=port,
                server=f"{name}.local.",
            )
            await self._zeroconf.async_register_service(service)
            log.info("wyoming advertised as %s on %s:%d (_wyoming._tcp)", name, address, port)
        except OSError as error:
            log.warning("zeroconf advertisement failed: %s", error)

    async def stop(self) -> None:
        if self._zeroconf is not None:
            with contextlib.suppress(Exception):
                await self._zeroconf.async_unregister_all_services()
                await self._zeroconf.async_close()


def _outward_address() -> str:
    """The address other machines reach this one at (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("224.0.0.251", 5353))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"
