"""Issue 28: what the stats projection costs Redis with 1, 10 and 50 instances, before (each
instance folds the whole stream) and after (one leader folds, everyone reads its snapshot).

On a private redis-server: a writer appends events at a steady rate while N projecting
instances (one process, each with its own connections) follow the stream and serve a
/stats-like read every second each. Redis commands/s come from INFO commandstats deltas and
its CPU from INFO cpu deltas over the measured window. At the end the writer stops and every
instance's answer must be the same, with every event written.

Run: flock /tmp/bench.lock .venv/bin/python -m bench.stats_projection [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from typing import Any

import redis

from adapters.redis_event_log import RedisStreamEventLog
from adapters.redis_link import RedisLink
from adapters.redis_stats_board import RedisStatsBoard
from application.fleet_stats import FleetStats
from application.stats import StatsProjector
from domain.events import DomainEvent, RequestCompleted, RequestReceived
from tests.integration.redis_server import RedisProcess

WARMUP_S = 3.0  # elections and the first folds are left out of the window


def redis_counters(raw: Any) -> tuple[dict[str, int], float, int]:
    calls = {
        name.removeprefix("cmdstat_"): int(v["calls"])
        for name, v in raw.info("commandstats").items()
    }
    cpu = raw.info("cpu")
    sent = int(raw.info("stats")["total_net_output_bytes"])
    return calls, float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), sent


def traffic(n: int) -> list[DomainEvent]:
    events: list[DomainEvent] = []
    for _ in range(n // 2):
        pid = uuid.uuid4().hex
        events.append(
            RequestReceived(
                pipeline_id=pid, occurred_at=0.0, pipeline="tts", transport="http", input_size=40
            )
        )
        events.append(
            RequestCompleted(
                pipeline_id=pid, occurred_at=0.0, pipeline="tts", latency_ms=12.0, cached=True
            )
        )
    return events


class Member:
    """One projecting instance: its own link and log, folding itself or reading the board."""

    def __init__(self, url: str, prefix: str, shared: bool) -> None:
        self.link = RedisLink(url, timeout=5.0)
        self.events = RedisStreamEventLog(
            self.link, stream=f"{prefix}:events", retention=1_000_000, buffer_max=100_000
        )
        self.projector = StatsProjector(self.events)
        self.fleet = (
            FleetStats(self.projector, RedisStatsBoard(self.events, prefix=prefix))
            if shared
            else None
        )
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self, read_every: float) -> None:
        await self.link.connect()
        following = self.fleet.run() if self.fleet else self.projector.run()
        self.tasks = [
            asyncio.create_task(following),
            asyncio.create_task(self._serve(read_every)),
        ]

    async def stats(self) -> tuple[dict[str, Any], bool]:
        return await (self.fleet or self.projector).current()

    async def _serve(self, every: float) -> None:
        await asyncio.sleep(random.uniform(0, every))
        while True:
            await self.stats()
            await asyncio.sleep(every)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.fleet:
            await self.fleet.release()
        await self.events.close()
        await self.link.close()


async def scenario(
    url: str, instances: int, shared: bool, seconds: float, rate: int
) -> dict[str, Any]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    raw = redis.Redis.from_url(url)
    writer_link = RedisLink(url, timeout=5.0)
    await writer_link.connect()
    writer = RedisStreamEventLog(
        writer_link, stream=f"{prefix}:events", retention=1_000_000, buffer_max=1_000_000
    )
    await writer.start()
    members = [Member(url, prefix, shared) for _ in range(instances)]
    for member in members:
        await member.start(read_every=1.0)
    written = 0
    tick = 0.05  # the writer appends rate*tick events every tick
    loop = asyncio.get_running_loop()
    started = loop.time()
    window: dict[str, Any] = {}
    while (now := loop.time() - started) < WARMUP_S + seconds:
        if not window and now >= WARMUP_S:
            window = {"t": time.monotonic(), "counters": redis_counters(raw), "written": written}
        batch = traffic(int(rate * tick))
        await writer.append(batch)
        written += len(batch)
        await asyncio.sleep(max(0.0, started + (written / rate) - loop.time()))
    calls1, cpu1, sent1 = redis_counters(raw)
    elapsed = time.monotonic() - window["t"]
    calls0, cpu0, sent0 = window["counters"]
    await writer.flush(30)
    deltas = {k: calls1.get(k, 0) - calls0.get(k, 0) for k in calls1}
    deltas.pop("info", None)
    answers = await settle(members, written)
    for member in members:
        await member.stop()
    await writer.close()
    await writer_link.close()
    raw.delete(f"{prefix}:events", "{" + prefix + ":stats}:leader")
    raw.delete("{" + prefix + ":stats}:snapshot")
    top = sorted(deltas.items(), key=lambda kv: -kv[1])[:4]
    return {
        "instances": instances,
        "mode": "after: one leader" if shared else "before: each folds",
        "events_per_s": round((written - window["written"]) / elapsed),
        "commands_per_s": round(sum(deltas.values()) / elapsed),
        "redis_cpu_pct": round(100 * (cpu1 - cpu0) / elapsed, 1),
        "redis_out_kb_per_s": round((sent1 - sent0) / elapsed / 1024),
        "top_commands_per_s": ", ".join(f"{k} {v / elapsed:.0f}" for k, v in top),
        "stats_equal": answers,
    }


async def settle(members: list[Member], written: int) -> str:
    """Once the writer has stopped: does every instance answer the same, with every event?"""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        snapshots = [(await member.stats())[0] for member in members]
        if all(s == snapshots[0] for s in snapshots) and snapshots[0]["events"] == written:
            return "yes"
        if asyncio.get_running_loop().time() > deadline:
            counts = sorted({s["events"] for s in snapshots})
            return f"NO (events {counts}, written {written})"
        await asyncio.sleep(0.2)


def markdown(rows: list[dict[str, Any]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row[k]) for k in header) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=500, help="events appended per second")
    parser.add_argument("--instances", default="1,10,50")
    args = parser.parse_args()
    server = RedisProcess()  # private: its INFO counts this bench only
    server.start()
    url = server.url
    try:
        rows = []
        for n in (int(x) for x in args.instances.split(",")):
            for shared in (False, True):
                row = asyncio.run(scenario(url, n, shared, args.seconds, args.rate))
                print(row, flush=True)
                rows.append(row)
        print(markdown(rows))
    finally:
        server.kill()


if __name__ == "__main__":
    main()
