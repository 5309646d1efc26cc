"""The Redis event log writes each batch exactly once: a retry after a lost reply writes
nothing twice, and with replicas a batch counts as written once a replica has it."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from adapters.redis_event_log import RedisStreamEventLog
from adapters.redis_link import RedisLink
from domain.events import RequestReceived
from tests.integration.redis_server import RedisProcess
from tests.integration.test_adapter_contracts import received


class ReplyCutter:
    """A TCP proxy to Redis that, once armed, lets a script run and then hangs up before its
    reply comes back: the client cannot know whether it was written."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.armed = False
        self.cut = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        sent_script = False

        async def forward() -> None:
            nonlocal sent_script
            while data := await reader.read(65536):
                sent_script = sent_script or b"EVALSHA" in data.upper()
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        pump = asyncio.ensure_future(forward())
        try:
            while data := await up_reader.read(65536):
                if self.armed and sent_script and data.startswith(b":"):
                    self.armed, self.cut = False, self.cut + 1
                    break  # the script ran; its reply is lost
                sent_script = False
                writer.write(data)
                await writer.drain()
        finally:
            pump.cancel()
            writer.close()
            up_writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


def wait_for_link(replica: redis.Redis) -> None:
    deadline = time.monotonic() + 30
    while replica.info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica never caught up"
        time.sleep(0.05)


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    yield server
    server.kill()


@pytest.fixture
async def cutter(own_redis: RedisProcess) -> AsyncIterator[tuple[ReplyCutter, str]]:
    proxy = ReplyCutter(own_redis.port)
    port = await proxy.start()
    yield proxy, f"redis://127.0.0.1:{port}/0"
    await proxy.close()


async def test_a_batch_whose_reply_was_lost_is_not_written_twice(
    cutter: tuple[ReplyCutter, str], own_redis: RedisProcess
) -> None:
    proxy, url = cutter
    link = RedisLink(url, timeout=1.0, max_backoff=0.2)
    await link.connect()
    stream = f"test-{uuid.uuid4().hex}:events"
    log = RedisStreamEventLog(link, stream=stream, retention=100_000, buffer_max=10_000)
    await log.start()
    await log.append([received(i) for i in range(3)])
    assert await log.flush(10)
    proxy.armed = True
    await log.append([received(i) for i in range(3, 10)])
    await log.append([received(i) for i in range(10, 12)])  # may join the retried batch
    assert await log.flush(30)
    assert proxy.cut == 1  # the reply was lost once, and the batch was sent again
    raw = redis.Redis.from_url(own_redis.url)
    events = [event for _, event in await log.read(None, 100)]
    sizes = [event.input_size for event in events if isinstance(event, RequestReceived)]
    assert sizes == list(range(12)) and raw.xlen(stream) == 12
    await log.close()
    await link.close()


async def test_with_a_replica_a_batch_is_written_once_the_replica_has_it() -> None:
    primary, replica = RedisProcess(), RedisProcess()
    primary.start()
    replica.start()
    raw_replica = redis.Redis.from_url(replica.url)
    raw_replica.replicaof("127.0.0.1", primary.port)
    link = RedisLink(primary.url)  # the default socket timeout: WAIT must end within it
    try:
        wait_for_link(raw_replica)
        await link.connect()
        stream = f"test-{uuid.uuid4().hex}:events"
        log = RedisStreamEventLog(
            link, stream=stream, retention=100_000, buffer_max=10_000, replicas=1
        )
        await log.start()
        await log.append([received(i) for i in range(50)])
        assert await log.flush(10)
        assert log.unreplicated == 0 and raw_replica.xlen(stream) == 50
        replica.kill()  # no replica: still written, after the bounded wait, and counted
        await log.append([received(50)])
        assert await log.flush(10)
        assert log.unreplicated == 1
        assert redis.Redis.from_url(primary.url).xlen(stream) == 51
        await log.close()
    finally:
        await link.close()
        with contextlib.suppress(Exception):
            replica.kill()
        primary.kill()
