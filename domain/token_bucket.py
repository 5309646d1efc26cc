"""Token bucket: a rate with a burst allowance. Time is passed in; nothing here reads a clock."""

from __future__ import annotations


class TokenBucket:
    """`rate` tokens a second, holding at most `burst`; `take` says whether `amount` fits now."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now

    def take(self, amount: float, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if amount > self.tokens:
            return False
        self.tokens -= amount
        return True
