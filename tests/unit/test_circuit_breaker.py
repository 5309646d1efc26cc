"""Every transition of the circuit breaker, driven by a clock we pass in."""

from __future__ import annotations

from domain.circuit import CircuitBreaker, CircuitPolicy, CircuitState

POLICY = CircuitPolicy(failure_threshold=3, cooldown_seconds=60.0, success_threshold=2)


def opened(now: float = 0.0) -> CircuitBreaker:
    breaker = CircuitBreaker(POLICY)
    for _ in range(3):
        breaker.record_failure(now)
    return breaker


def test_closed_lets_calls_through_and_counts_consecutive_failures() -> None:
    breaker = CircuitBreaker(POLICY)
    assert breaker.allow(0.0) == (True, None)
    assert breaker.record_failure(0.0) is None
    assert breaker.record_failure(0.0) is None
    assert breaker.record_success(0.0) is None  # a success resets the count
    assert breaker.record_failure(0.0) is None
    assert breaker.record_failure(0.0) is None
    assert breaker.state is CircuitState.CLOSED


def test_closed_opens_after_n_consecutive_failures() -> None:
    breaker = CircuitBreaker(POLICY)
    breaker.record_failure(1.0)
    breaker.record_failure(2.0)
    assert breaker.record_failure(3.0) is CircuitState.OPEN
    assert breaker.opened_at == 3.0


def test_open_refuses_until_the_cooldown_ends_then_half_opens() -> None:
    breaker = opened(now=10.0)
    assert breaker.allow(10.0) == (False, None)
    assert breaker.allow(69.9) == (False, None)
    assert breaker.allow(70.0) == (True, CircuitState.HALF_OPEN)


def test_half_open_lets_one_trial_through_at_a_time() -> None:
    breaker = opened()
    assert breaker.allow(60.0) == (True, CircuitState.HALF_OPEN)
    assert breaker.allow(60.1) == (False, None)  # the trial is still running
    assert breaker.record_success(61.0) is None  # 1 of 2 successes
    assert breaker.allow(61.0) == (True, None)  # the next trial


def test_half_open_closes_after_m_successes() -> None:
    breaker = opened()
    breaker.allow(60.0)
    breaker.record_success(60.5)
    breaker.allow(61.0)
    assert breaker.record_success(61.5) is CircuitState.CLOSED
    assert breaker.allow(62.0) == (True, None)
    assert breaker.failures == 0


def test_half_open_reopens_on_a_failure_with_a_new_cooldown() -> None:
    breaker = opened()
    breaker.allow(60.0)
    assert breaker.record_failure(60.5) is CircuitState.OPEN
    assert breaker.allow(119.0) == (False, None)
    assert breaker.allow(120.5) == (True, CircuitState.HALF_OPEN)


def test_a_late_failure_while_open_changes_nothing() -> None:
    breaker = opened(now=5.0)
    assert breaker.record_failure(6.0) is None
    assert breaker.opened_at == 5.0
