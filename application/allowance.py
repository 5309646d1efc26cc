"""A quota charged exactly: reserved before the work, settled to what was used."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

Reserve = Callable[[float], Awaitable[float]]  # amount -> the time it counts against
Refund = Callable[[float, float], Awaitable[None]]  # (amount, that time)


class Allowance:
    """What one request or stream may use of a key's quota (STT seconds, TTS characters).

    Rules:
    - Amounts are reserved atomically before the work (concurrent requests cannot all pass a
      nearly spent quota); a stream reserves whole units ahead, so a shared store is asked
      about once a second of audio, not once a frame.
    - `unuse` takes back what was counted but not delivered (an utterance refused, text
      never spoken); `settle` gives back what was reserved and not used: the key pays what it
      used.
    """

    def __init__(self, reserve: Reserve, refund: Refund) -> None:
        self._reserve_now = reserve
        self._refund = refund
        self.used = 0.0
        self._reserved: list[tuple[float, float]] = []  # (seconds, when) per reservation

    @property
    def reserved(self) -> float:
        return sum(seconds for seconds, _ in self._reserved)

    async def reserve(self, seconds: float) -> None:
        """Reserve exactly `seconds` (a whole upload once decoded, a text once validated)."""
        at = await self._reserve_now(seconds)
        self._reserved.append((seconds, at))
        self.used += seconds

    async def use(self, seconds: float) -> None:
        """Count streamed audio, reserving whole seconds ahead when it runs past the reserve."""
        missing = self.used + seconds - self.reserved
        if missing > 0:
            ahead = float(math.ceil(missing))
            at = await self._reserve_now(ahead)
            self._reserved.append((ahead, at))
        self.used += seconds

    def unuse(self, seconds: float) -> None:
        """Counted but never delivered: not charged."""
        self.used = max(0.0, self.used - seconds)

    async def settle(self) -> None:
        """Give back what was reserved and not used; idempotent."""
        spare = self.reserved - self.used
        while spare > 1e-9 and self._reserved:
            seconds, at = self._reserved.pop()
            back = min(seconds, spare)
            await self._refund(back, at)
            spare -= back
            if back < seconds:
                self._reserved.append((seconds - back, at))
        self.used = self.reserved
