"""Issue 18: what waiting for the event write costs a cached TTS request on Redis.

Run: flock /tmp/bench.lock .venv/bin/python -m bench.event_confirm [--rounds 3]
(needs wrk, and a Redis at $REDIS_URL or 127.0.0.1:6379)

With Redis, a request answers only once its events are in the stream
(`EVENT_CONFIRM_SECONDS`, 0.25 s at most; concurrent requests share one write). This starts
`voicepipe serve` on Redis with each setting in turn, round after round, caches one clip and
runs wrk (2 threads, CLIENTS keep-alive connections) after a 3 s warm-up. Prints req/s, p50 and
p99 (medians over the rounds).
"""

from __future__ import annotations

import argparse
import os
import uuid

import httpx
import redis

from bench.harness import running_service, table
from bench.shared_state import CLIENTS, TEXT
from bench.tts_tail import rounds_summary, wrk

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
SETTINGS = {"no wait (EVENT_CONFIRM_SECONDS=0)": "0", "wait for the write (0.25, default)": "0.25"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in SETTINGS}
    raw = redis.Redis.from_url(REDIS_URL)
    for _ in range(args.rounds):
        for name, seconds in SETTINGS.items():
            prefix = f"bench-confirm-{uuid.uuid4().hex[:8]}"
            env = {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix, "EVENT_CONFIRM_SECONDS": seconds}
            try:
                with running_service(**env) as service:
                    url = f"{service.url}/api/tts"
                    httpx.post(url, json={"text": TEXT}, timeout=60).raise_for_status()
                    wrk(url, {"text": TEXT}, "application/json", seconds=3)
                    runs[name].append(wrk(url, {"text": TEXT}, "application/json", args.seconds))
            finally:
                keys = list(raw.scan_iter(match=f"{prefix}:*", count=1000))
                if keys:
                    raw.delete(*keys)
    rows = [
        (f"cached TTS on Redis, {CLIENTS} clients: {name}", rounds_summary(results), "", "")
        for name, results in runs.items()
    ]
    print(table(rows))


if __name__ == "__main__":
    main()
