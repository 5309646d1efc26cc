"""Provider health shared by every instance: one instance's open circuit opens it on all.

Each instance keeps its own breakers (domain.circuit) and records its own events. What it
shares through a BreakerStore is the openings: when a breaker here opens, the store holds
"open since T" for the cool-down; every instance reads the store every `interval` seconds and
opens its own breaker from T (recording CircuitOpened with shared=True). A close here clears
the store; elsewhere the cool-down then runs out and each instance makes its own trial call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from application.background import stop_if_cancelled
from application.ports import BreakerStore, Clock, EventLog
from application.provider_chain import ProviderChain
from domain.circuit import CircuitState
from domain.events import CircuitOpened

log = logging.getLogger(__name__)


class SharedBreakers:
    """Keeps a ProviderChain's breakers in step with the fleet's through a BreakerStore."""

    def __init__(
        self,
        chain: ProviderChain,
        store: BreakerStore,
        events: EventLog,
        clock: Clock,
        *,
        cooldown_seconds: float,
        interval: float = 0.5,
    ) -> None:
        self.chain = chain
        self.store = store
        self.events = events
        self.clock = clock
        self.cooldown_seconds = cooldown_seconds
        self.interval = interval
        self._pending: list[tuple[str, CircuitState, float]] = []
        self._wake = asyncio.Event()
        chain.on_change.append(self.changed)

    def changed(self, provider: str, state: CircuitState) -> None:
        """A breaker here changed state (called inside a request): share it soon, off its path."""
        self._pending.append((provider, state, self.clock.now()))
        self._wake.set()

    async def run(self) -> None:
        """Share changes as they come, and adopt the fleet's openings every `interval`."""
        while True:
            stop_if_cancelled()
            self._wake.clear()
            try:
                await self.sync()
            except Exception as error:  # the store is away: breakers stay per instance meanwhile
                log.debug("shared breakers not synced: %s", error)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()

    async def sync(self) -> None:
        while self._pending:  # in order; one that fails stays for the next round
            provider, state, at = self._pending[0]
            left = self.cooldown_seconds - (self.clock.now() - at)  # counted from the opening
            if state is CircuitState.OPEN and left > 0:
                await self.store.open(provider, at, left)
            elif state is CircuitState.CLOSED:
                await self.store.close(provider)
            self._pending.pop(0)
        opened = await self.store.opened(list(self.chain.breakers))
        now, monotonic = self.clock.now(), self.clock.monotonic()
        adopted = []
        for provider, opened_at in opened.items():
            if provider not in self.chain.breakers:
                continue
            since = max(0.0, now - opened_at)
            if self.chain.adopt_open(provider, monotonic - since):
                log.warning("%s circuit opened by another instance", provider)
                adopted.append(
                    CircuitOpened(
                        pipeline_id=f"circuit-{provider}-{int(opened_at * 1000)}",
                        occurred_at=now,
                        provider=provider,
                        shared=True,
                    )
                )
        if adopted:
            await self.events.append(adopted)
