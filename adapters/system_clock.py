"""The real clock."""

from __future__ import annotations

import time


class SystemClock:
    """Wall time for event timestamps, a monotonic clock for latencies."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()
