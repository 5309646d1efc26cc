"""Scale-out on this machine: 3 `voicepipe serve` processes on one Redis behind a real HAProxy
(Debian's, the structure of deploy/haproxy/haproxy.cfg on loopback), under mixed load from 20
clients (cached TTS, uncached TTS, STT) while one instance is killed with SIGKILL and another
restarted. bench/scale_out.py runs the same scenario with the full 2,000 requests; here 300
keep `make test` bounded (about 40 s on 2 cores).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.scale_out import DROPPED, RETRYABLE, Fleet, failures, haproxy_binary, run_scenario

REQUESTS = 300


@pytest.fixture
def fleet(redis_url: str) -> Iterator[Fleet]:
    haproxy = haproxy_binary()
    if haproxy is None:
        pytest.fail("haproxy is not installed: make tools installs it (apt-get install haproxy)")
    running = Fleet(3, redis_url)  # its own key prefix: clashes with no other test
    try:
        running.start(haproxy)
        yield running
    finally:
        running.stop()


def test_killing_and_restarting_instances_under_load(fleet: Fleet) -> None:
    report = run_scenario(fleet, REQUESTS, clients=20, sockets=6)
    outcomes = report.outcomes
    assert len(outcomes) == REQUESTS
    # Every request got an answer or a retryable error; none hung (20 s client timeouts).
    assert failures(report) == [], report.by_status()
    answered = [o for o in outcomes if o.status == 200]
    assert len(answered) >= 0.9 * REQUESTS, report.by_status()
    assert sum(o.status in RETRYABLE or o.status in DROPPED for o in outcomes) <= 0.1 * REQUESTS
    assert {o.kind for o in answered} == {"cached", "uncached", "stt"}
    # The shared stream holds the events of every answered request (recorded before answering).
    assert report.missing_events == []
    # /stats, folded from that stream, agree on every live instance (the restarted one too).
    assert len(report.stats) == 2 and report.victim not in report.stats
    first, second = report.stats.values()
    assert first == second
    assert first["requests"]["tts"]["completed"] >= sum(o.kind != "stt" for o in answered)
    # WebSocket clients of the killed instance saw the close and went on through HAProxy.
    victims = [c for c in report.sockets if c.servers[0] == report.victim]
    assert victims
    for client in victims:
        assert client.closes and len(client.servers) >= 2
        assert client.servers[1] != report.victim and sum(client.replies[1:]) > 0
