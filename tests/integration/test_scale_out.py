"""Scale-out on this machine: 3 `voicepipe serve` processes on one Redis behind a real HAProxy
(Debian's, the structure of deploy/haproxy/haproxy.cfg on loopback), under mixed load from 20
clients (cached TTS, uncached TTS, STT) while one instance is killed with SIGKILL and another
restarted. bench/scale_out.py runs the same scenario with the full 2,000 requests; here 300
keep `make test` bounded (about 40 s on 2 cores).

Unlike the bench, this runs on a shared, busy machine (other test runs beside it), where model
work takes several times as long: at a load of 9-10 on 2 cores, waits of 30 s behind Piper and
Whisper. So Piper's queue is bounded like Whisper's (TTS_QUEUE_MAX=4: past it, `busy` at once
instead of a wait), which keeps the longest answer near 17 s there, and a request counts as
hung after 45 s (the bench: 20 s), still short of HAProxy's own 60 s server timeout.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

import pytest

from bench.scale_out import Fleet, Outcome, Report, failures, haproxy_binary, run_scenario

REQUESTS = 300
CLIENTS = 20  # each with one request in flight at a time
HUNG_AFTER_S = 45.0
# HAProxy's checks (every 500 ms, 250 ms once failing; out after 2 failures) take an instance
# out within this of its going away: what is sent to it meanwhile may still meet it.
NOTICED_S = 2.0


@pytest.fixture
def fleet(redis_url: str) -> Iterator[Fleet]:
    haproxy = haproxy_binary()
    if haproxy is None:
        pytest.fail("haproxy is not installed: make tools installs it (apt-get install haproxy)")
    # Its own key prefix: clashes with no other test.
    running = Fleet(3, redis_url, overrides={"TTS_QUEUE_MAX": "4"})
    try:
        running.start(haproxy)
        yield running
    finally:
        running.stop()


def went_away(report: Report, outcome: Outcome) -> str | None:
    """Which instance went away while it was in flight: the killed one (from the SIGKILL), the
    restarted one (from its SIGTERM until its process was gone), or neither (None); either
    until HAProxy has noticed."""
    killed, (stopping, stopped) = report.killed_at, report.restart_stopping
    for event, start, end in (("kill", killed, killed), ("restart", stopping, stopped)):
        if outcome.started <= end + NOTICED_S and outcome.ended >= start:
            return event
    return None


def test_killing_and_restarting_instances_under_load(fleet: Fleet) -> None:
    report = run_scenario(fleet, REQUESTS, CLIENTS, sockets=6, client_timeout=HUNG_AFTER_S)
    outcomes = report.outcomes
    assert len(outcomes) == REQUESTS
    # Every request got an answer or a retryable error; none hung.
    assert failures(report) == [], report.by_status()
    answered = [o for o in outcomes if o.status == 200]
    assert {o.kind for o in answered} == {"cached", "uncached", "stt"}
    # What a correct fleet may leave unanswered, however busy the machine, and nothing else:
    # - model work refused 503 `busy` at once: uploads past STT_QUEUE_MAX, uncached sentences
    #   past TTS_QUEUE_MAX; how many depends on the load. Cached TTS needs no model: never.
    # - requests that met an instance going away, that HAProxy could not send elsewhere (an
    #   upload it had begun to stream; no other instance ready: 503): in flight there as it
    #   went, or sent there before HAProxy noticed; or still running on the restarted one past
    #   its 10 s graceful shutdown (503 `shutting_down`). A client has one request in flight,
    #   and one it sends before HAProxy notices fails only after HAProxy's 1 s wait to retry:
    #   2 per client and event (5-21 in all seen on this machine, busy or not). On a machine
    #   busy enough that both survivors' model queues stay at the readiness mark, HAProxy has
    #   no ready instance for a moment and says 503 to what comes (58 seen once, in a full
    #   fresh run beside other work): 4 per client bounds that, still far below the 200+ of
    #   a balancer that does not retry.
    # A balancer that goes on sending work to a dead instance, or loses work its survivors
    # could do, loses requests at other moments; one that fails fast what it cannot place
    # at once loses far more around each event (over 200 when it does not retry).
    unanswered = [o for o in outcomes if o.status != 200]
    shed = [o for o in unanswered if o.status == 503 and o.code == "busy"]
    assert {o.kind for o in shed} <= {"stt", "uncached"}, report.by_status()
    lost = [o for o in unanswered if o not in shed]
    lost_to = collections.Counter(went_away(report, o) for o in lost)
    unexplained = [o for o in lost if went_away(report, o) is None]
    assert unexplained == [], (unexplained, report.by_status())
    assert max(lost_to.values(), default=0) <= 4 * CLIENTS, (lost_to, report.by_status())
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
