"""Shared provider health: one instance's open circuit opens it on the others, per instance
events, and openings that lapse with the cool-down (in-memory store, fake clock)."""

from __future__ import annotations

from adapters.memory_breaker_store import InMemoryBreakerStore
from adapters.memory_event_log import InMemoryEventLog
from application.pipeline_run import PipelineRun
from application.provider_chain import ProviderChain
from application.shared_breakers import SharedBreakers
from domain.circuit import CircuitBreaker, CircuitPolicy, CircuitState
from domain.events import CircuitOpened
from tests.unit.fakes import FakeClock, FakeSynthesizer

POLICY = CircuitPolicy(failure_threshold=3, cooldown_seconds=60.0, success_threshold=1)


class Instance:
    def __init__(self, store: InMemoryBreakerStore, clock: FakeClock) -> None:
        self.clock = clock
        self.events = InMemoryEventLog()
        self.chain = ProviderChain([FakeSynthesizer("cloud")], clock, POLICY)
        self.shared = SharedBreakers(
            self.chain, store, self.events, clock, cooldown_seconds=POLICY.cooldown_seconds
        )

    def run(self) -> PipelineRun:
        return PipelineRun("tts", "p1", self.clock)

    def fail(self, times: int) -> None:
        for _ in range(times):
            self.chain.failed("cloud", "provider_error", self.clock.monotonic(), self.run())

    async def opened_events(self) -> list[CircuitOpened]:
        return [e for _, e in await self.events.read(None, 100) if isinstance(e, CircuitOpened)]


def fleet(size: int = 2) -> tuple[FakeClock, list[Instance]]:
    clock = FakeClock()
    store = InMemoryBreakerStore(clock)
    return clock, [Instance(store, clock) for _ in range(size)]


async def test_failures_on_one_instance_open_the_circuit_on_the_others() -> None:
    _, (a, b, c) = fleet(3)
    a.fail(3)
    assert a.chain.states() == {"cloud": "open"}
    for instance in (a, b, c):
        await instance.shared.sync()
    assert b.chain.states() == c.chain.states() == {"cloud": "open"}
    assert not b.chain.allow("cloud", b.run())
    # Each instance records its own state change; the adopted ones say they were shared.
    assert [e.shared for e in await b.opened_events()] == [True]
    assert await a.opened_events() == []  # a's own opening is in a's request events, not here


async def test_an_adopted_opening_keeps_the_original_cool_down() -> None:
    clock, (a, b) = fleet()
    a.fail(3)
    await a.shared.sync()
    clock.t += 40
    await b.shared.sync()  # b learns of it 40 s late: 20 s of cool-down remain, not 60
    clock.t += 21
    assert b.chain.allow("cloud", b.run())
    assert b.chain.states() == {"cloud": "half_open"}


async def test_openings_lapse_with_the_cool_down_and_a_close_clears_the_store() -> None:
    clock, (a, b) = fleet()
    a.fail(3)
    await a.shared.sync()
    clock.t += 61
    await b.shared.sync()  # too late: the opening lapsed, b never opens
    assert b.chain.states() == {"cloud": "closed"}
    a.chain.allow("cloud", a.run())  # half-open trial
    a.chain.succeeded("cloud", a.run())
    assert a.chain.states() == {"cloud": "closed"}
    a.fail(3)
    await a.shared.sync()
    a.chain.breakers["cloud"].opened_at -= 61
    a.chain.allow("cloud", a.run())
    a.chain.succeeded("cloud", a.run())
    await a.shared.sync()  # the close is shared: nothing is open any more
    await b.shared.sync()
    assert b.chain.states() == {"cloud": "closed"}


async def test_one_instance_running_alone_is_not_changed_by_its_own_opening() -> None:
    _, (a,) = fleet(1)
    a.fail(3)
    opened_at = a.chain.breakers["cloud"].opened_at
    await a.shared.sync()
    await a.shared.sync()
    assert a.chain.states() == {"cloud": "open"}
    assert abs(a.chain.breakers["cloud"].opened_at - opened_at) < 0.1
    assert await a.opened_events() == []


def test_adopt_open_on_the_breaker_itself() -> None:
    breaker = CircuitBreaker(POLICY)
    assert breaker.adopt_open(10.0) is CircuitState.OPEN
    assert breaker.adopt_open(5.0) is None and breaker.opened_at == 10.0  # older: ignored
    assert breaker.adopt_open(20.0) is None and breaker.opened_at == 20.0  # later: extends
    assert breaker.allow(79.0) == (False, None)
    assert breaker.allow(80.0) == (True, CircuitState.HALF_OPEN)
    assert breaker.adopt_open(81.0) is CircuitState.OPEN  # half-open trial abandoned
