"""Issue 28: cached TTS on a three-primary Redis Cluster against one Redis, in one run.

Starts a private redis-server and a private three-primary cluster (real processes on
loopback ports), then `voicepipe serve` on each in turn, round after round: one clip cached,
then wrk (CLIENTS keep-alive connections) after a 3 s warm-up. Prints req/s, p50 and p99
(medians over the rounds).

Run: flock /tmp/bench.lock .venv/bin/python -m bench.cluster [--rounds 3] [--seconds 10]
(needs wrk, redis-server and redis-cli)
"""

from __future__ import annotations

import argparse

import httpx

from bench.harness import running_service, table
from bench.shared_state import CLIENTS, TEXT
from bench.tts_tail import rounds_summary, wrk
from tests.integration.redis_server import RedisProcess
from tests.integration.redis_servers import Cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    single, cluster = RedisProcess(), Cluster()
    single.start()
    cluster.start()
    targets = {"one Redis": single.url, "three-primary Cluster": cluster.url}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    try:
        for _ in range(args.rounds):
            for name, url in targets.items():
                with running_service(REDIS_URL=url) as service:
                    tts = f"{service.url}/api/tts"
                    httpx.post(tts, json={"text": TEXT}, timeout=60).raise_for_status()
                    wrk(tts, {"text": TEXT}, "application/json", seconds=3)
                    runs[name].append(wrk(tts, {"text": TEXT}, "application/json", args.seconds))
    finally:
        single.kill()
        cluster.stop()
    rows = [
        (f"cached TTS, {CLIENTS} clients, {name}", rounds_summary(results), "", "")
        for name, results in runs.items()
    ]
    print(table(rows))


if __name__ == "__main__":
    main()
