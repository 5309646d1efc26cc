"""StatsBoard on Redis: a lease key (SET NX PX, renewed by compare-and-renew) and the
published snapshot (msgpack), both under one hash tag so the scripts work on Redis Cluster.

The publish script checks the lease and writes in one step: a leader that lost its lease
(paused, partitioned) cannot overwrite its successor's snapshot.
"""

from __future__ import annotations

from typing import Any, cast

import msgspec

from adapters.redis_event_log import RedisStreamEventLog
from application.ports import PublishedStats

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

PUBLISH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


def stream_order(entry_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence or 0)


class RedisStatsBoard:
    """The fleet's stats lease and snapshot, next to the Redis stream event log it folds."""

    def __init__(self, events: RedisStreamEventLog, *, prefix: str) -> None:
        self.events = events
        self.link = events.link
        tag = "{" + prefix + ":stats}"
        self.leader_key = f"{tag}:leader"
        self.snapshot_key = f"{tag}:snapshot"
        self._renew = self.link.client.register_script(RENEW)
        self._release = self.link.client.register_script(RELEASE)
        self._publish = self.link.client.register_script(PUBLISH)
        self._decoder = msgspec.msgpack.Decoder(PublishedStats)

    async def acquire(self, owner: str, seconds: float) -> bool:
        taken = await self.link.run(
            lambda: self.link.client.set(self.leader_key, owner, nx=True, px=_ms(seconds))
        )
        return bool(taken)

    async def renew(self, owner: str, seconds: float) -> bool:
        kept = await self.link.run(
            lambda: self._renew(keys=[self.leader_key], args=[owner, _ms(seconds)])
        )
        return bool(kept)

    async def release(self, owner: str) -> None:
        await self.link.run(lambda: self._release(keys=[self.leader_key], args=[owner]))

    async def publish(self, owner: str, stats: PublishedStats) -> bool:
        payload = msgspec.msgpack.encode(stats)
        done = await self.link.run(
            lambda: self._publish(keys=[self.leader_key, self.snapshot_key], args=[owner, payload])
        )
        return bool(done)

    async def fetch(self) -> tuple[PublishedStats | None, bool]:
        leader, payload = cast(
            "list[bytes | None]",
            await self.link.run(
                lambda: self.link.client.mget([self.leader_key, self.snapshot_key])
            ),
        )
        published = None if payload is None else self._decoder.decode(payload)
        return published, leader is not None

    async def head(self) -> str | None:
        self.link.check()
        await self.events.flush(1.0)  # read-your-writes: what this process buffered goes first
        newest = cast(
            "list[tuple[bytes, Any]]",
            await self.link.run(lambda: self.link.client.xrevrange(self.events.stream, count=1)),
        )
        return newest[0][0].decode() if newest else None

    def covers(self, position: str, target: str) -> bool:
        return stream_order(position) >= stream_order(target)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
