"""Circuit breaker: a pure policy per provider. Time is passed in; nothing here reads a clock.

CLOSED --N consecutive failures--> OPEN --cool-down--> HALF_OPEN (one trial at a time)
HALF_OPEN --M successes--> CLOSED;  HALF_OPEN --a failure--> OPEN
"""

from __future__ import annotations

import enum

import msgspec


class CircuitState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitPolicy(msgspec.Struct, frozen=True):
    failure_threshold: int = 5
    cooldown_seconds: float = 60.0
    success_threshold: int = 2


class CircuitBreaker:
    """Decides whether a provider may be called; each method returns the new state on a change."""

    def __init__(self, policy: CircuitPolicy | None = None) -> None:
        self.policy = policy or CircuitPolicy()
        self.state = CircuitState.CLOSED
        self.failures = 0
        self.successes = 0
        self.opened_at = 0.0
        self.trial_in_flight = False

    def allow(self, now: float) -> tuple[bool, CircuitState | None]:
        """May a call go through now? Moves OPEN to HALF_OPEN once the cool-down is over."""
        if self.state is CircuitState.CLOSED:
            return True, None
        if self.state is CircuitState.OPEN:
            if now - self.opened_at < self.policy.cooldown_seconds:
                return False, None
            self.state = CircuitState.HALF_OPEN
            self.successes = 0
            self.trial_in_flight = True
            return True, CircuitState.HALF_OPEN
        if self.trial_in_flight:
            return False, None
        self.trial_in_flight = True
        return True, None

    def record_success(self, now: float) -> CircuitState | None:
        if self.state is CircuitState.HALF_OPEN:
            self.trial_in_flight = False
            self.successes += 1
            if self.successes >= self.policy.success_threshold:
                self.state = CircuitState.CLOSED
                self.failures = 0
                return CircuitState.CLOSED
            return None
        self.failures = 0
        return None

    def record_failure(self, now: float) -> CircuitState | None:
        if self.state is CircuitState.HALF_OPEN:
            self.trial_in_flight = False
            return self._open(now)
        if self.state is CircuitState.CLOSED:
            self.failures += 1
            if self.failures >= self.policy.failure_threshold:
                return self._open(now)
        return None  # already open: a call let through before it opened, finishing late

    def adopt_open(self, opened_at: float) -> CircuitState | None:
        """Another instance opened this provider's circuit at `opened_at` (this clock's time).

        The circuit opens here too, its cool-down counted from `opened_at`; an opening no
        later than the one already in force changes nothing.
        """
        if self.state is CircuitState.OPEN and opened_at <= self.opened_at:
            return None
        changed = self.state is not CircuitState.OPEN
        self._open(opened_at)
        self.trial_in_flight = False
        return CircuitState.OPEN if changed else None

    def _open(self, now: float) -> CircuitState:
        self.state = CircuitState.OPEN
        self.opened_at = now
        self.successes = 0
        return CircuitState.OPEN
