"""The in-memory event log keeps the most recent `retention` events, ids never reused."""

from __future__ import annotations

from adapters.memory_event_log import InMemoryEventLog
from domain.events import CircuitOpened


def opened(n: int) -> CircuitOpened:
    return CircuitOpened(pipeline_id=f"p{n}", occurred_at=float(n), provider=f"provider-{n}")


async def test_a_full_log_keeps_exactly_the_most_recent_events() -> None:
    log = InMemoryEventLog(retention=5)
    for n in range(12):
        await log.append([opened(n)])
    entries = await log.read(None, 100)
    assert [entry_id for entry_id, _ in entries] == ["7", "8", "9", "10", "11"]
    assert [event for _, event in entries] == [opened(n) for n in range(7, 12)]
    assert log.health()["events"] == 12


async def test_readers_resume_across_the_wrap_and_skip_what_was_dropped() -> None:
    log = InMemoryEventLog(retention=4)
    await log.append([opened(n) for n in range(3)])
    assert [i for i, _ in await log.read("0", 1)] == ["1"]
    await log.append([opened(n) for n in range(3, 9)])  # one batch wraps the ring
    assert [i for i, _ in await log.read("1", 2)] == ["5", "6"]  # 2..4 were overwritten
    assert [e.pipeline_id for _, e in await log.read("6", 10)] == ["p7", "p8"]
    assert await log.read("8", 10) == []


async def test_wait_returns_at_once_when_events_are_newer() -> None:
    log = InMemoryEventLog(retention=2)
    await log.wait(None, 0.01)  # empty: waits out the timeout
    await log.append([opened(0), opened(1), opened(2)])
    await log.wait("1", 60)  # "2" is newer: no wait
    await log.wait(None, 60)
