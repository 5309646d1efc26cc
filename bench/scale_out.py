"""Issue 18: three `voicepipe serve` instances behind a real HAProxy, under mixed load, while one
instance is killed with SIGKILL and another restarted (SIGTERM, then started again).

Every request must get an answer or a retryable error (none hangs), the shared Redis stream
must hold the events of every completed request, /stats must agree on the live instances, and
WebSocket clients of the killed instance must see the close and reconnect through HAProxy.
tests/integration/test_scale_out.py runs this with fewer requests; this runs the full 2,000.

Run: flock /tmp/bench.lock .venv/bin/python -m bench.scale_out [--requests 2000] [--clients 20]
(needs haproxy, and a Redis at $REDIS_URL or 127.0.0.1:6379)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis
import websockets
from websockets.asyncio.client import connect

from bench.harness import free_port, table

ROOT = Path(__file__).resolve().parents[1]
HAPROXY_CFG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHED = [
    "Welcome back.",
    "Your order has shipped.",
    "Please hold the line.",
    "The meeting starts at noon.",
]
RETRYABLE = {429, 502, 503, 504}
# The connection dropped before any answer: nothing was done for the client, who may resend.
# Timeouts are not here: a request with no answer in CLIENT_TIMEOUT is a hang.
DROPPED = {"RemoteProtocolError", "ConnectError", "ReadError"}
CLIENT_TIMEOUT = 20.0  # a request not answered by then counts as hung


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")


def loopback_config(port: int, backends: dict[str, int]) -> str:
    """deploy/haproxy/haproxy.cfg with loopback servers instead of Docker's DNS, and quicker
    health checks (a test has seconds, not minutes)."""
    lines: list[str] = []
    skipping = False
    for line in HAPROXY_CFG.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("resolvers "):
            skipping = True
        if skipping:
            skipping = bool(stripped)
            continue
        if stripped.startswith("log "):
            line = (
                "    log stderr format raw local0 info"
                if stripped.startswith("log stdout")
                else line
            )
        if stripped.startswith("maxconn "):
            line = "    maxconn 2000"  # within a test machine's open-files limit
        if stripped.startswith("bind "):
            line = f"    bind 127.0.0.1:{port}"
        elif stripped.startswith("default-server "):
            line = "    default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 2"
        elif stripped.startswith("server-template "):
            line = "\n".join(f"    server {n} 127.0.0.1:{p} check" for n, p in backends.items())
        lines.append(line)
    return "\n".join(lines) + "\n"


class Instance:
    """One `voicepipe serve` process on a loopback port."""

    def __init__(self, name: str, port: int, env: dict[str, str], logs: Path) -> None:
        self.name, self.port, self.env, self.logs = name, port, env, logs
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.logs / f"{self.name}-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "voicepipe"), "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.logs}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s")
            time.sleep(0.2)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM: the draining shutdown; SIGKILL only if it outlasts `timeout`."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rss_mb(self) -> float:
        assert self.process is not None
        return float(psutil.Process(self.process.pid).memory_info().rss) / 2**20


class Fleet:
    """N instances on one Redis (their own key prefix) behind one HAProxy on loopback."""

    def __init__(
        self, size: int = 3, redis_url: str = REDIS_URL, overrides: dict[str, str] | None = None
    ) -> None:
        """`overrides`: settings (environment variables) of every instance, over these."""
        self.redis_url = redis_url
        self.prefix = f"scale-{uuid.uuid4().hex[:8]}"
        self.dir = Path(tempfile.mkdtemp(prefix="voicepipe-fleet-"))
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": self.prefix,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "warning",
            "STT_TURN_DETECTION": "silence",
            "WHISPER_THREADS": "1",  # three instances share two cores here
            # An upload takes 1-2 s on one shared core: past 4 queued, "busy" (retryable) comes
            # at once instead of after the client's timeout (16 queued: 20 s on a slow machine).
            "STT_QUEUE_MAX": "4",
            "OTEL_SDK_DISABLED": "true",
        }
        env.update(overrides or {})
        env.pop("PORT", None)
        self.instances = [
            Instance(f"voicepipe{i + 1}", free_port(), env, self.dir) for i in range(size)
        ]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/voice"
        self.haproxy: subprocess.Popen[bytes] | None = None
        self.phases: dict[str, float] = {}  # seconds each step took, for the bench's output

    def by_name(self, name: str) -> Instance:
        return next(i for i in self.instances if i.name == name)

    def start(self, haproxy: str) -> None:
        started = time.perf_counter()
        for instance in self.instances:
            instance.start()
        for instance in self.instances:
            instance.wait_ready()
        self.phases["instances ready"] = time.perf_counter() - started
        config = self.dir / "haproxy.cfg"
        config.write_text(loopback_config(self.port, {i.name: i.port for i in self.instances}))
        check = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.haproxy = subprocess.Popen(
            [haproxy, "-db", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=(self.dir / "haproxy.log").open("wb"),
        )
        self.wait_balanced()

    def wait_balanced(self, timeout: float = 30.0) -> None:
        """Until every live instance is ready and HAProxy's checks (rise 2, every 0.5 s) can
        have seen it, and a request through HAProxy is answered."""
        for instance in self.instances:
            if instance.alive:
                instance.wait_ready(timeout)
        time.sleep(1.5)
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=5) as http:
            while True:
                try:
                    if http.get("/live").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "HAProxy does not answer"
                time.sleep(0.1)

    def stop(self) -> None:
        if self.haproxy is not None:
            self.haproxy.terminate()
            self.haproxy.wait(timeout=10)
        for instance in self.instances:  # all at once: each drains on its own
            if instance.alive and instance.process is not None:
                instance.process.send_signal(signal.SIGTERM)
        for instance in self.instances:
            instance.stop(timeout=20)
        raw: Any = redis.Redis.from_url(self.redis_url)
        keys = list(raw.scan_iter(match=f"{self.prefix}:*", count=1000))
        if keys:
            raw.delete(*keys)
        if os.environ.get("KEEP_FLEET_LOGS"):
            print(f"logs kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def stream_events(self) -> list[Any]:
        from domain.events import decode_event

        raw: Any = redis.Redis.from_url(self.redis_url)
        return [decode_event(f[b"e"]) for _, f in raw.xrange(f"{self.prefix}:events")]


@contextmanager
def running_fleet(haproxy: str, size: int = 3) -> Iterator[Fleet]:
    fleet = Fleet(size)
    try:
        fleet.start(haproxy)
        yield fleet
    finally:
        fleet.stop()


@dataclass
class Outcome:
    kind: str  # cached, uncached, stt
    request_id: str
    status: int | str  # HTTP status, or the exception that ended it (a hang or a transport error)
    ms: float
    started: float = 0.0  # time.perf_counter() when sent and when answered: what it overlapped
    ended: float = 0.0
    code: str | None = None  # the error body's code (busy, shutting_down), where it has one


@dataclass
class SocketClient:
    """One WebSocket client: the instance of each connection, its replies, how each ended."""

    servers: list[str] = field(default_factory=list)
    replies: list[int] = field(default_factory=list)  # per connection
    closes: list[str] = field(default_factory=list)


@dataclass
class Report:
    outcomes: list[Outcome]
    seconds: float
    victim: str
    restarted: str
    sockets: list[SocketClient]
    missing_events: list[str]
    stats: dict[str, dict[str, Any]]
    killed_at: float = 0.0  # time.perf_counter() just before the SIGKILL
    restart_stopping: tuple[float, float] = (0.0, 0.0)  # SIGTERM sent .. process gone

    def by_status(self) -> collections.Counter[str]:
        return collections.Counter(f"{o.kind} {o.status}" for o in self.outcomes)


async def _request(client: httpx.AsyncClient, i: int, run: str, wav: bytes) -> Outcome:
    request_id = f"{run}-{i}"
    headers = {"x-request-id": request_id}
    kind = "stt" if i % 10 == 0 else "uncached" if i % 10 in (1, 2) else "cached"
    started = time.perf_counter()
    try:
        if kind == "stt":
            response = await client.post(
                "/api/stt", files={"file": ("a.wav", wav)}, headers=headers
            )
        else:
            text = CACHED[i % len(CACHED)] if kind == "cached" else f"Fresh words number {i}."
            response = await client.post("/api/tts", json={"text": text}, headers=headers)
        status: int | str = response.status_code
        code = _error_code(response) if status != 200 else None
    except httpx.HTTPError as error:
        status, code = type(error).__name__, None
    ended = time.perf_counter()
    return Outcome(kind, request_id, status, 1000 * (ended - started), started, ended, code)


def _error_code(response: httpx.Response) -> str | None:
    """The service's error code; None for an answer without one (HAProxy's own pages)."""
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


async def _socket_client(
    fleet: Fleet, index: int, stop: asyncio.Event, me: SocketClient, patience: float
) -> None:
    text = CACHED[index % len(CACHED)]
    while not stop.is_set():
        try:
            async with connect(fleet.ws_url, open_timeout=10, close_timeout=2) as ws:
                served = ws.response.headers.get("x-served-by", "?") if ws.response else "?"
                me.servers.append(served)
                me.replies.append(0)
                while not stop.is_set():
                    await ws.send(json.dumps({"type": "text", "text": text}))
                    async with asyncio.timeout(patience):
                        while json.loads(await ws.recv()).get("type") not in ("audio", "error"):
                            pass
                    me.replies[-1] += 1
                    await asyncio.sleep(0.2)
        except (websockets.ConnectionClosed, websockets.InvalidStatus, OSError) as error:
            me.closes.append(type(error).__name__)
            await asyncio.sleep(0.2)


@dataclass
class _Run:
    outcomes: list[Outcome]
    seconds: float
    victim: str
    restarted: str
    sockets: list[SocketClient]
    killed_at: float
    restart_stopping: tuple[float, float]


async def _scenario(
    fleet: Fleet, total: int, clients: int, sockets: int, wav: bytes, patience: float
) -> _Run:
    run = uuid.uuid4().hex[:8]
    stop = asyncio.Event()
    socket_clients = [SocketClient() for _ in range(sockets)]
    socket_tasks = [
        asyncio.create_task(_socket_client(fleet, i, stop, c, patience))
        for i, c in enumerate(socket_clients)
    ]
    deadline = time.monotonic() + 20
    while not all(c.replies and c.replies[0] for c in socket_clients):
        assert time.monotonic() < deadline, "WebSocket clients did not connect"
        await asyncio.sleep(0.05)
    victim = fleet.by_name(socket_clients[0].servers[0])  # has a WebSocket client for sure
    restarted = next(i for i in fleet.instances if i is not victim)
    pending = iter(range(total))
    outcomes: list[Outcome] = []
    chaos: list[asyncio.Task[None]] = []
    moments: dict[str, float] = {}

    def stop_restarted() -> None:
        moments["stopping"] = time.perf_counter()
        restarted.stop()
        moments["stopped"] = time.perf_counter()

    async def restart() -> None:
        await asyncio.to_thread(stop_restarted)
        await asyncio.to_thread(restarted.start)
        await asyncio.to_thread(restarted.wait_ready)

    def progressed() -> None:
        done = len(outcomes)
        if done == total // 4:
            moments["killed"] = time.perf_counter()
            victim.kill()
        elif done == total // 2:
            chaos.append(asyncio.create_task(restart()))

    async def client() -> None:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=fleet.url, timeout=patience, limits=limits) as http:
            for i in pending:
                outcomes.append(await _request(http, i, run, wav))
                progressed()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - started
    await asyncio.gather(*chaos)
    fleet.phases["load"] = seconds
    fleet.phases["restart done"] = time.perf_counter() - started
    await asyncio.to_thread(fleet.wait_balanced)
    await asyncio.sleep(1.0)  # WebSocket clients of the restarted instance reconnect too
    stop.set()
    await asyncio.gather(*socket_tasks)
    fleet.phases["sockets closed"] = time.perf_counter() - started
    return _Run(
        outcomes,
        seconds,
        victim.name,
        restarted.name,
        socket_clients,
        moments["killed"],
        (moments["stopping"], moments["stopped"]),
    )


def run_scenario(
    fleet: Fleet,
    total: int,
    clients: int = 20,
    sockets: int = 6,
    client_timeout: float = CLIENT_TIMEOUT,
) -> Report:
    """The mixed load with the kill and the restart; then the checks' raw material. A request
    not answered in `client_timeout` counts as hung."""
    from domain.events import RequestCompleted

    with httpx.Client(base_url=fleet.url, timeout=60) as http:
        for text in CACHED:  # cached from here on, for every instance (shared Redis cache)
            assert http.post("/api/tts", json={"text": text}).status_code == 200
        spoken = http.post(
            "/api/tts", json={"text": "Please call me back tomorrow.", "format": "wav"}
        )
        wav = base64.b64decode(spoken.json()["audio_base64"])
    run = asyncio.run(_scenario(fleet, total, clients, sockets, wav, client_timeout))
    completed = {e.pipeline_id for e in fleet.stream_events() if isinstance(e, RequestCompleted)}
    missing = [
        o.request_id for o in run.outcomes if o.status == 200 and o.request_id not in completed
    ]
    stats = {}
    for instance in fleet.instances:
        if instance.alive:
            snapshot = httpx.get(f"{instance.url}/stats", timeout=30).json()
            snapshot.pop("event_log", None)  # this instance's own buffer: not shared state
            stats[instance.name] = snapshot
    return Report(
        run.outcomes,
        run.seconds,
        run.victim,
        run.restarted,
        run.sockets,
        missing,
        stats,
        run.killed_at,
        run.restart_stopping,
    )


def failures(report: Report) -> list[Outcome]:
    """Requests that neither got an answer nor a retryable error: hung, or a hard error."""
    return [
        o
        for o in report.outcomes
        if o.status != 200 and o.status not in RETRYABLE and o.status not in DROPPED
    ]


def describe(report: Report, print_line: Callable[[str], None] = print) -> None:
    ok = [o for o in report.outcomes if o.status == 200]
    rows = [
        ("requests", str(len(report.outcomes)), "", ""),
        ("answered 200", str(len(ok)), "", ""),
        ("retryable errors", str(sum(o.status in RETRYABLE for o in report.outcomes)), "", ""),
        ("dropped connections", str(sum(o.status in DROPPED for o in report.outcomes)), "", ""),
        ("hung or hard errors", str(len(failures(report))), "", ""),
        (
            "seconds",
            f"{report.seconds:.1f}",
            f"{len(report.outcomes) / report.seconds:.1f} req/s",
            "",
        ),
        ("events missing from the stream", str(len(report.missing_events)), "", ""),
    ]
    for kind in ("cached", "uncached", "stt"):
        times = sorted(o.ms for o in ok if o.kind == kind)
        if times:
            p50, p99 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]
            rows.append((f"{kind} latency", f"p50 {p50:.0f} ms", f"p99 {p99:.0f} ms", ""))
    print_line(table(rows))
    print_line(f"statuses: {dict(sorted(report.by_status().items()))}")
    print_line(f"killed {report.victim}, restarted {report.restarted}")
    for i, client in enumerate(report.sockets):
        print_line(
            f"ws{i}: servers {client.servers} replies {client.replies} closes {client.closes}"
        )
    agree = len({json.dumps(s, sort_keys=True) for s in report.stats.values()}) == 1
    print_line(f"/stats agree on {sorted(report.stats)}: {agree}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    haproxy = haproxy_binary()
    if haproxy is None:
        raise SystemExit("haproxy is not installed (apt-get install haproxy)")
    with running_fleet(haproxy) as fleet:
        rss = {i.name: round(i.rss_mb()) for i in fleet.instances}
        report = run_scenario(fleet, args.requests, args.clients)
        rss_after = {i.name: round(i.rss_mb()) for i in fleet.instances if i.alive}
        print(f"RSS after the load (MB): {rss_after}")
    print(f"RSS after start-up (MB): {rss}; phases (s): {fleet.phases}")
    describe(report)
    shown = re.sub(r"\s+", " ", f"{args.requests} requests from {args.clients} clients")
    print(shown)


if __name__ == "__main__":
    main()
