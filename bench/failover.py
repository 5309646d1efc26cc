"""Issue 28: the Redis primary SIGKILLed under load from three instances on Sentinel.

A primary, a replica and three sentinels (down-after 1 s) on loopback; three `voicepipe
serve` instances on them (REDIS_SENTINELS), every client limited as one anonymous key with a
daily character quota. Load on every instance (cached and uncached TTS, STT, WebSocket
speech); once the quota is nearly spent, the primary is killed and clients spend the rest of
the quota on every instance while the sentinels promote the replica. Reported: how long until
every instance works on the new primary, requests that failed, events lost or written twice,
and how far the quota was overrun.

Run: flock /tmp/bench.lock .venv/bin/python -m bench.failover [--quota 60000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis
from websockets.asyncio.client import connect

from bench.harness import table
from bench.scale_out import CACHED, Fleet
from domain.events import RequestCompleted, decode_event
from tests.integration.redis_servers import MASTER, SentinelSet

PROBE = "This sentence is long, so that the quota runs out in few requests. " * 8  # 544 chars
CLIENTS_PER_INSTANCE = 4
CLIENT_TIMEOUT = 30.0  # an answer slower than this counts as failed


@dataclass
class Tally:
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    answered: list[str] = field(default_factory=list)  # request ids answered 200
    when: dict[str, tuple[str, float]] = field(default_factory=dict)  # id -> kind, answered at
    killed: float = 0.0
    chars: int = 0  # characters of the TTS answered 200
    failures: list[str] = field(default_factory=list)  # what was not 200 nor a quota refusal
    socket_replies: int = 0
    socket_errors: collections.Counter[str] = field(default_factory=collections.Counter)


async def _client(
    url: str, run: str, index: int, wav: bytes, stop: asyncio.Event, t: Tally
) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT) as http:
        i = 0
        while not stop.is_set():
            i += 1
            request_id = f"{run}-{index}-{i}"
            kind = ("stt", "uncached", "cached", "cached", "probe")[i % 5]
            text = {"cached": CACHED[i % len(CACHED)], "probe": PROBE}.get(
                kind, f"Fresh words {index} {i}."
            )
            try:
                if kind == "stt":
                    files = {"file": ("a.wav", wav)}
                    response = await http.post(
                        "/api/stt", files=files, headers={"x-request-id": request_id}
                    )
                else:
                    body = {"text": text}
                    response = await http.post(
                        "/api/tts", json=body, headers={"x-request-id": request_id}
                    )
                status: int | str = response.status_code
            except httpx.HTTPError as error:
                status = type(error).__name__
            t.statuses[f"{kind} {status}"] += 1
            if status == 200:
                t.answered.append(request_id)
                t.when[request_id] = (kind, time.perf_counter() - t.killed if t.killed else -1.0)
                t.chars += 0 if kind == "stt" else len(text)
            elif status != 429:
                t.failures.append(f"{kind} {status} {request_id}")


async def _speaker(url: str, stop: asyncio.Event, t: Tally) -> None:
    ws_url = url.replace("http://", "ws://") + "/ws/voice"
    while not stop.is_set():
        try:
            async with connect(ws_url, open_timeout=10, close_timeout=2) as ws:
                while not stop.is_set():
                    await ws.send(json.dumps({"type": "text", "text": CACHED[0]}))
                    while (kind := json.loads(await ws.recv()).get("type")) not in (
                        "audio",
                        "error",
                    ):
                        pass
                    if kind == "audio":
                        t.socket_replies += 1
                        t.chars += len(CACHED[0])
                    await asyncio.sleep(0.2)
        except Exception as error:
            t.socket_errors[type(error).__name__] += 1
            await asyncio.sleep(0.2)


async def _healthy(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            health = (await http.get(f"{url}/health")).json()
    except (httpx.HTTPError, ValueError):
        return False
    redis_parts = [c for c in health.get("components", {}).values() if isinstance(c, dict)]
    redis_parts = [c for c in redis_parts if c.get("kind") in ("redis", "redis_stream")]
    return bool(redis_parts) and all(c.get("status") == "ok" for c in redis_parts)


async def _used(url: str) -> float:
    async with httpx.AsyncClient(timeout=10) as http:
        usage = (await http.get(f"{url}/v1/usage")).json()
    return float(usage["tts_characters"]["used"])


async def _scenario(
    fleet: Fleet, sentinels: SentinelSet, quota: int, wav: bytes, warm: int
) -> dict[str, Any]:
    run, t, stop = uuid.uuid4().hex[:8], Tally(chars=warm), asyncio.Event()
    urls = [i.url for i in fleet.instances]
    tasks = [
        asyncio.create_task(_client(url, run, n * 10 + k, wav, stop, t))
        for n, url in enumerate(urls)
        for k in range(CLIENTS_PER_INSTANCE)
    ] + [asyncio.create_task(_speaker(url, stop, t)) for url in urls]
    while True:  # until the quota is nearly spent: then the kill
        if await _used(urls[0]) >= quota - 6 * len(PROBE):
            break
        await asyncio.sleep(0.05)
    killed = t.killed = time.perf_counter()
    old_port = sentinels.primary.port
    sentinels.kill_primary()
    back: dict[str, float] = {}
    promoted = asyncio.create_task(_promoted(sentinels, old_port, killed))
    await asyncio.sleep(0.3)
    give_up = time.monotonic() + 120
    while len(back) < len(urls):
        if time.monotonic() > give_up:
            raise RuntimeError(f"only {len(back)} instances work again 120 s after the kill")
        for url in urls:
            if url not in back and await _healthy(url):
                back[url] = time.perf_counter() - killed
        await asyncio.sleep(0.1)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the quota's last requests, until it is spent
        if not any(k.startswith("probe") and k != "probe 200" for k in t.statuses):
            await asyncio.sleep(0.2)
            continue
        await asyncio.sleep(2.0)
        break
    stop.set()
    await asyncio.gather(*tasks)
    logs = [await _event_log(url) for url in urls]  # what each still holds, once drained
    used = await _used(urls[0])
    return {"tally": t, "back": back, "used": used, "logs": logs, "promoted": await promoted}


async def _promoted(sentinels: SentinelSet, old_port: int, killed: float) -> float:
    """Seconds from the kill until the sentinels name another primary."""
    while True:
        if await asyncio.to_thread(sentinels.primary_port) != old_port:
            return time.perf_counter() - killed
        await asyncio.sleep(0.05)


async def _event_log(url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            log: dict[str, Any] = (await http.get(f"{url}/health")).json()["components"][
                "event_log"
            ]
            if not log.get("buffered") or time.monotonic() > deadline:
                return log
            await asyncio.sleep(0.2)


@dataclass
class FailoverReport:
    quota: int
    tally: Tally
    promoted: float  # seconds after the kill until the sentinels named the new primary
    back: list[float]  # seconds after the kill until each instance worked on the new primary
    used: float  # the quota's use as the shared counter has it, after the run
    logs: list[dict[str, Any]]  # each instance's event log, after the run
    missing: list[str]  # answered requests with no RequestCompleted in the stream
    twice: list[str]  # ... with more than one

    @property
    def overrun(self) -> int:
        return max(0, self.tally.chars - self.quota)


def run(quota: int, overrides: dict[str, str] | None = None) -> FailoverReport:
    sentinels = SentinelSet()
    sentinels.start()
    primary = f"redis://127.0.0.1:{sentinels.primary.port}/0"
    settings = {
        "REDIS_SENTINELS": ",".join(f"{h}:{p}" for h, p in sentinels.addresses),
        "REDIS_SENTINEL_MASTER": MASTER,
        "ANONYMOUS_LIMITS": "on",
        "TTS_CHARS_PER_DAY": str(quota),
        "RATE_LIMIT_PER_MINUTE": "0",
        "CONNECTIONS_PER_KEY": "0",
        **(overrides or {}),
    }
    fleet = Fleet(3, redis_url=primary, overrides=settings)
    try:
        for instance in fleet.instances:
            instance.start()
        for instance in fleet.instances:
            instance.wait_ready()
        with httpx.Client(base_url=fleet.instances[0].url, timeout=120) as http:
            for text in [*CACHED, PROBE]:  # cached from here on, on every instance
                assert http.post("/api/tts", json={"text": text}).status_code == 200
            spoken = http.post("/api/tts", json={"text": "Call me back.", "format": "wav"})
            wav = base64.b64decode(spoken.json()["audio_base64"])
        warm = sum(len(text) for text in [*CACHED, PROBE, "Call me back."])
        result = asyncio.run(_scenario(fleet, sentinels, quota, wav, warm))
        fleet.redis_url = f"redis://127.0.0.1:{sentinels.primary_port()}/0"
        raw: Any = redis.Redis.from_url(fleet.redis_url)
        completed = collections.Counter(
            e.pipeline_id
            for e in (decode_event(f[b"e"]) for _, f in raw.xrange(f"{fleet.prefix}:events"))
            if isinstance(e, RequestCompleted)
        )
    finally:
        fleet.stop()
        sentinels.stop()
    tally: Tally = result["tally"]
    answered = set(tally.answered)
    return FailoverReport(
        quota,
        tally,
        result["promoted"],
        sorted(result["back"].values()),
        result["used"],
        result["logs"],
        [r for r in answered if completed[r] == 0],
        [r for r in answered if completed[r] > 1],
    )


def describe(report: FailoverReport) -> None:
    t, back = report.tally, report.back
    rows = [
        ("sentinels name the new primary", f"{report.promoted:.2f} s after the kill", "", ""),
        ("every instance on the new primary", f"{back[-1]:.2f} s after the kill", "", ""),
        ("first instance on it", f"{back[0]:.2f} s", "", ""),
        ("requests answered 200", str(len(t.answered)), "", ""),
        ("failed (not 200, not a quota 429)", str(len(t.failures)), "", ""),
        ("events of answered requests missing", str(len(report.missing)), "", ""),
        ("written twice", str(len(report.twice)), "", ""),
        ("quota", f"{report.quota} chars", f"used (shared) {report.used:.0f}", ""),
        ("TTS chars answered (REST and WebSocket)", str(t.chars), "", ""),
        ("quota overrun", f"{report.overrun} chars", f"one request: {len(PROBE)}", ""),
        ("WebSocket replies", str(t.socket_replies), f"ends {dict(t.socket_errors)}", ""),
    ]
    print(table(rows))
    print(f"statuses: {dict(sorted(t.statuses.items()))}")
    print(f"failures: {t.failures[:20]}")
    print(f"event logs after the run: {report.logs}")
    print(f"missing (kind, seconds after the kill): {[t.when[r] for r in report.missing]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quota", type=int, default=60_000)
    args = parser.parse_args()
    describe(run(args.quota))


if __name__ == "__main__":
    main()
