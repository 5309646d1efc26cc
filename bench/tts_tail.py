"""Issue 17 figures: cached TTS tail latency on the embedded default, JSON vs binary answers.

Run: .venv/bin/python -m bench.tts_tail   (needs wrk: `apt-get install wrk`)

Starts `voicepipe serve` on loopback with no REDIS_URL (in-memory cache and event log, as a new
user runs it), caches one clip (~157 kB as base64), then for each answer kind, interleaved over
ROUNDS rounds: a 3 s warm-up and wrk with 2 threads and CLIENTS keep-alive connections for
SECONDS s. Prints req/s, p50 and p99 (medians over the rounds) and the bytes of one answer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from collections.abc import Mapping

import httpx

from bench.harness import running_service, table
from bench.shared_state import CLIENTS, TEXT

KINDS = {"json": "application/json", "binary": "audio/*"}


def rounds_summary(results: list[dict[str, float]]) -> str:
    """wrk's figures over rounds: medians, then every round's req/s and p99."""
    every = ", ".join(f"{r['rps']:.0f}/{r['p99']:.1f}" for r in results)
    return (
        f"{statistics.median(r['rps'] for r in results):.0f} req/s, "
        f"p50 {statistics.median(r['p50'] for r in results):.1f} ms, "
        f"p99 {statistics.median(r['p99'] for r in results):.1f} ms (rounds {every})"
    )


def wrk(url: str, body: Mapping[str, object], accept: str, seconds: int) -> dict[str, float]:
    """Requests/s, p50 and p99 (ms) of POSTing `body` from CLIENTS keep-alive connections."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Accept"] = "{accept}"\n'
            f"wrk.body = {json.dumps(json.dumps(body))}\n"
        )
    try:
        result = subprocess.run(
            ["wrk", "-t2", f"-c{CLIENTS}", f"-d{seconds}s", "--latency", "-s", script.name, url],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(script.name)
    figures: dict[str, float] = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            figures["rps"] = float(parts[1])
        elif parts and parts[0] in ("50%", "99%"):
            figures["p" + parts[0][:-1]] = _ms(parts[1])
        elif "Non-2xx" in line or "Socket errors" in line:
            raise RuntimeError(line)
    return figures


def _ms(value: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    raise ValueError(value)


def answer_bytes(url: str, body: Mapping[str, object], accept: str) -> tuple[int, int, str]:
    """Body and header bytes of one cached answer, and its content type."""
    reply = httpx.post(url, json=body, headers={"accept": accept}, timeout=60)
    reply.raise_for_status()
    headers = sum(len(k) + len(v) + 4 for k, v in reply.headers.raw) + len(
        "HTTP/1.1 200 OK\r\n\r\n"
    )
    return len(reply.content), headers, reply.headers["content-type"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--kinds", default="json,binary", help="comma-separated: json, binary")
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    env = {"REDIS_URL": "", "EVENT_LOG": "auto"}
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    sizes: dict[str, tuple[int, int, str]] = {}
    with running_service(**env) as service:
        url = f"{service.url}/api/tts"
        body = {"text": TEXT}
        clip = httpx.post(url, json=body, timeout=60).json()  # fill the cache
        for kind in kinds:
            sizes[kind] = answer_bytes(url, body, KINDS[kind])
        for _ in range(args.rounds):
            for kind in kinds:
                wrk(url, body, KINDS[kind], seconds=3)  # warm-up
                runs[kind].append(wrk(url, body, KINDS[kind], seconds=args.seconds))
        rss = service.rss_mb()
        events = httpx.get(f"{service.url}/stats", timeout=60).json()["events"]
    rows: list[tuple[str, str, str, str]] = []
    for kind in kinds:
        rps = statistics.median(r["rps"] for r in runs[kind])
        p50 = statistics.median(r["p50"] for r in runs[kind])
        p99 = statistics.median(r["p99"] for r in runs[kind])
        every = ", ".join(f"{r['rps']:.0f}/{r['p99']:.1f}" for r in runs[kind])
        rows.append(
            (
                f"cached TTS, {kind} ({KINDS[kind]}), {CLIENTS} clients, {clip['duration']} s clip",
                f"{rps:.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms (rounds {every})",
                ">= 2100 req/s, p99 <= 50 ms",
                str(rps >= 2100 and p99 <= 50),
            )
        )
    for kind in kinds:
        size, headers, content_type = sizes[kind]
        rows.append((f"bytes per answer, {kind}", f"{size:,} body + {headers} headers", "", ""))
        rows.append((f"content type, {kind}", content_type, "", ""))
    rows.append(("service RSS after the runs / events logged", f"{rss:.0f} MB / {events}", "", ""))
    print(table(rows))


if __name__ == "__main__":
    main()
