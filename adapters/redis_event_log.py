"""Event log on a Redis Stream: XADD of msgpack-encoded events, capped with MAXLEN ~.

Events go to a bounded in-memory buffer that one background task writes in batches (one
atomic script call per batch), in order. While Redis is away the buffer holds them; past its
bound, new events are dropped and counted, never silently. With `confirm_seconds`, an append
waits (that long at most, and only while Redis is up) for its batch to be written: a request
answered is then a request recorded, even if the process is killed right after (group
commit: concurrent appends share one write).

Exactly once, also across a failover: each batch is numbered per process and the script skips
a number already written (a retry after a lost reply), and with `replicas` a batch counts as
written only once a replica has it too (WAIT), so a primary that dies before replicating it
leaves the batch to be written again on the new primary, not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Sequence
from itertools import islice
from typing import cast

from adapters.redis_link import DOWN, RedisLink
from domain.events import DomainEvent, decode_event, encode_event

log = logging.getLogger(__name__)

FIELD = b"e"

# One command per batch instead of one per event (client-side packing of XADDs costs more
# than Redis running them), and atomic: a batch lands whole or not at all.
# KEYS[2] holds the number of this writer's last batch written (it shares the stream's slot).
APPEND_BATCH = """
if tonumber(redis.call('GET', KEYS[2]) or '-1') >= tonumber(ARGV[2]) then return 0 end
for i = 3, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i])
end
redis.call('SET', KEYS[2], ARGV[2], 'EX', 86400)
return #ARGV - 2
"""


class RedisStreamEventLog:
    """Event log port on one Redis stream shared by every service instance."""

    def __init__(
        self,
        link: RedisLink,
        *,
        stream: str,
        retention: int,
        buffer_max: int,
        batch: int = 1000,
        confirm_seconds: float = 0.0,
        replicas: int = 0,
        replica_wait_ms: int = 250,  # under the link's socket timeout, or WAIT never returns
    ) -> None:
        self.link = link
        self.stream = stream
        self.retention = retention
        self.buffer_max = buffer_max
        self.batch = batch
        self.confirm_seconds = confirm_seconds
        self.replicas = replicas
        self.replica_wait_ms = replica_wait_ms
        self.writer = f"{stream}:writer:{uuid.uuid4().hex}"
        self._batch_number = 0
        self._inflight = 0  # the size of the batch being written, until it is
        self.unreplicated = 0  # batches no replica acknowledged in time (kept anyway)
        self._wait_again_at = 0.0
        self.dropped = 0
        self._enqueued = 0  # events ever buffered, and of those, written: the commit counters
        self._written = 0
        self._progressed = asyncio.Event()
        self._pending: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._writer: asyncio.Task[None] | None = None
        self._last_drop_log = 0.0
        self._append_batch = link.client.register_script(APPEND_BATCH)
        # Blocking XREAD holds its connection: a pool of its own, with a timeout above BLOCK.
        self._blocking = link.blocking_client()

    async def start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(self._write_forever())

    async def append(self, events: Sequence[DomainEvent]) -> None:
        room = self.buffer_max - len(self._pending)
        if room < len(events):
            self._drop(len(events) - max(0, room))
            events = events[: max(0, room)]
        if events:
            self._pending.extend(encode_event(event) for event in events)
            self._enqueued += len(events)
            self._drained.clear()
            self._wake.set()
            if self.confirm_seconds > 0 and self.link.available and self._writing():
                await self._confirm(self._enqueued)

    def _writing(self) -> bool:
        return self._writer is not None and not self._writer.done()

    async def _confirm(self, upto: int) -> None:
        """Wait until the first `upto` events are written, or `confirm_seconds` pass."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.confirm_seconds):
                while self._written < upto:
                    await self._progressed.wait()

    def _drop(self, count: int) -> None:
        self.dropped += count
        now = time.monotonic()
        if now - self._last_drop_log >= 1.0:  # at most one line a second under load
            self._last_drop_log = now
            log.error(
                "event buffer full (%d events): dropped %d events so far",
                self.buffer_max,
                self.dropped,
            )

    async def _write_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self.link.wait_up()
                # A retry is the same batch (same events, same number), however many came since.
                size = self._inflight or min(self.batch, len(self._pending))
                self._inflight = size
                batch = list(islice(self._pending, size))
                try:
                    await self._write(batch)
                except DOWN as error:
                    self.link.mark_down(error)
                    continue
                self._inflight = 0
                for _ in batch:
                    self._pending.popleft()
                self._written += len(batch)
                progressed, self._progressed = self._progressed, asyncio.Event()
                progressed.set()
            self._drained.set()

    async def _write(self, batch: list[bytes]) -> None:
        """Write the next batch; the same number again (a retry) is written at most once."""
        keys = [self.stream, self.writer]
        args: list[int | bytes] = [self.retention, self._batch_number, *batch]
        if not self.replicas or time.monotonic() < self._wait_again_at:
            await self._append_batch(keys=keys, args=args)
        else:  # one connection, so WAIT waits for this write
            async with self.link.client.pipeline(transaction=False) as pipe:
                await self._append_batch(keys=keys, args=args, client=pipe)
                pipe.execute_command("WAIT", self.replicas, self.replica_wait_ms)
                acknowledged = (await pipe.execute())[-1]
            if acknowledged < self.replicas:  # no replica now: do not slow every batch
                self.unreplicated += 1
                self._wait_again_at = time.monotonic() + 5.0
        self._batch_number += 1

    async def flush(self, seconds: float) -> bool:
        """Wait until everything appended so far is in Redis; False if it takes longer."""
        try:
            async with asyncio.timeout(seconds):  # wait_for (3.11) may swallow a cancel
                await self._drained.wait()
        except TimeoutError:
            return False
        return True

    async def read(self, after: str | None, count: int) -> list[tuple[str, DomainEvent]]:
        self.link.check()
        if self._pending:
            await self.flush(1.0)  # read-your-writes for this process
        start = "-" if after is None else f"({after}"
        entries = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            await self.link.run(
                lambda: self.link.client.xrange(self.stream, start, "+", count=count)
            ),
        )
        return [(entry_id.decode(), decode_event(fields[FIELD])) for entry_id, fields in entries]

    async def wait(self, after: str | None, seconds: float) -> None:
        if not self.link.available:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self.link.wait_up()
            return
        with contextlib.suppress(*DOWN):
            await self._blocking.xread(
                {self.stream: after or "0-0"}, count=1, block=max(1, int(seconds * 1000))
            )

    def health(self) -> dict[str, object]:
        return {
            "kind": "redis_stream",
            **self.link.health(),
            "buffered": len(self._pending),
            "dropped": self.dropped,
            **({"unreplicated": self.unreplicated} if self.replicas else {}),
        }

    async def close(self, seconds: float = 5.0) -> None:
        if self._pending and self.link.available:
            await self.flush(seconds)
        if self._writer is not None:
            self._writer.cancel()
        await self._blocking.aclose()
