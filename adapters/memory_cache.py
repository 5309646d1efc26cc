"""In-process audio cache: LRU, bounded in bytes, with a time to live. The embedded default."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from application.ports import Clock


class InMemoryAudioCache:
    """Audio cache port in one process; evicts least recently used entries past `max_bytes`."""

    def __init__(self, *, max_bytes: int, ttl_seconds: float, clock: Clock) -> None:
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.size = 0
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        # Suspend once, as a Redis lookup does: a hit that never yields lets one loop iteration
        # run every pending request start to finish (issue 17: p99 3-4x at 50 clients).
        await asyncio.sleep(0)
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self.clock.monotonic():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return  # larger than the whole cache: caching it would evict everything
        if key in self._entries:
            self._remove(key)
        self._entries[key] = (self.clock.monotonic() + self.ttl_seconds, value)
        self.size += len(value)
        while self.size > self.max_bytes:
            self._remove(next(iter(self._entries)))

    def _remove(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self.size -= len(value)

    def health(self) -> dict[str, object]:
        return {"status": "ok", "kind": "memory", "entries": len(self._entries), "bytes": self.size}
