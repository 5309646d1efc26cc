"""STT seconds charged exactly: reserved before the model hears them, settled after."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from application.access import Access, Principal


class AudioAllowance:
    """STT seconds for one upload or stream, charged exactly.

    Rules:
    - Seconds are reserved atomically before the model gets the audio (concurrent requests
      cannot all pass a nearly spent quota); a stream reserves whole seconds ahead, so a
      shared store is asked about once a second of audio, not once a frame.
    - `settle` gives back what was reserved but not used: the key pays what it used.
    """

    def __init__(self, access: Access, principal: Principal) -> None:
        self.access = access
        self.principal = principal
        self.used = 0.0
        self._reserved: list[tuple[float, float]] = []  # (seconds, when) per reservation

    @property
    def reserved(self) -> float:
        return sum(seconds for seconds, _ in self._reserved)

    async def reserve(self, seconds: float) -> None:
        """Reserve exactly `seconds` (a whole upload, its duration known after decoding)."""
        at = await self.access.reserve_audio(self.principal, seconds)
        self._reserved.append((seconds, at))
        self.used += seconds

    async def use(self, seconds: float) -> None:
        """Count streamed audio, reserving whole seconds ahead when it runs past the reserve."""
        missing = self.used + seconds - self.reserved
        if missing > 0:
            ahead = float(math.ceil(missing))
            at = await self.access.reserve_audio(self.principal, ahead)
            self._reserved.append((ahead, at))
        self.used += seconds

    def unuse(self, seconds: float) -> None:
        """Audio counted but never heard (its utterance was refused): not charged."""
        self.used = max(0.0, self.used - seconds)

    async def settle(self) -> None:
        """Give back what was reserved and not used; idempotent."""
        spare = self.reserved - self.used
        while spare > 1e-9 and self._reserved:
            seconds, at = self._reserved.pop()
            back = min(seconds, spare)
            await self.access.refund_audio(self.principal, back, at)
            spare -= back
            if back < seconds:
                self._reserved.append((seconds - back, at))
        self.used = self.reserved
