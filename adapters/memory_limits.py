"""Limit counters in this process: the embedded default when no Redis is configured."""

from __future__ import annotations

import time
from collections import deque


class InMemoryLimits:
    """LimitStore port in one process; memory stays bounded by dropping finished windows."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}  # bucket -> (window index, used)
        self._recent: dict[str, deque[float]] = {}  # bucket -> times of its last `limit` hits
        self._groups: dict[str, dict[str, float]] = {}  # group -> member -> expiry
        self._seen: dict[str, float] = {}  # single-use name -> expiry (monotonic)

    async def hit(self, bucket: str, limit: int, window_seconds: float, now: float) -> float:
        times = self._recent.setdefault(bucket, deque())
        while times and times[0] <= now - window_seconds:
            times.popleft()
        if len(times) >= limit:
            return times[-limit] + window_seconds - now
        times.append(now)
        if len(self._recent) > 10_000:  # many idle keys: forget those with nothing recent
            self._recent = {
                k: v for k, v in self._recent.items() if v and v[-1] > now - window_seconds
            }
        return 0.0

    def _used(self, bucket: str, window_seconds: int, now: float) -> tuple[int, float]:
        index = int(now // window_seconds)
        current = self._windows.get(bucket)
        return index, current[1] if current is not None and current[0] == index else 0.0

    async def take(
        self, bucket: str, amount: float, limit: float, window_seconds: int, now: float
    ) -> float:
        index, used = self._used(bucket, window_seconds, now)
        if used + amount > limit:
            return window_seconds - now % window_seconds
        self._windows[bucket] = (index, used + amount)
        return 0.0

    async def add(self, bucket: str, amount: float, window_seconds: int, now: float) -> float:
        index, used = self._used(bucket, window_seconds, now)
        self._windows[bucket] = (index, used + amount)
        return used + amount

    async def join(
        self, group: str, member: str, limit: int, ttl_seconds: float, now: float
    ) -> bool:
        members = self._groups.setdefault(group, {})
        for name, expiry in list(members.items()):
            if expiry <= now:
                del members[name]
        if member not in members and len(members) >= limit:
            return False
        members[member] = now + ttl_seconds
        return True

    async def leave(self, group: str, member: str) -> None:
        members = self._groups.get(group)
        if members is not None:
            members.pop(member, None)
            if not members:
                del self._groups[group]

    async def count(self, bucket: str, window_seconds: float, now: float) -> int:
        return sum(1 for t in self._recent.get(bucket, ()) if t > now - window_seconds)

    async def total(self, bucket: str, window_seconds: int, now: float) -> float:
        return self._used(bucket, window_seconds, now)[1]

    async def members(self, group: str, now: float) -> int:
        return sum(1 for expiry in self._groups.get(group, {}).values() if expiry > now)

    async def first_use(self, name: str, ttl_seconds: float) -> bool:
        now = time.monotonic()
        if len(self._seen) > 10_000:
            self._seen = {k: v for k, v in self._seen.items() if v > now}
        if self._seen.get(name, 0.0) > now:
            return False
        self._seen[name] = now + ttl_seconds
        return True
