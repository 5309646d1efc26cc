"""Issue 4 figures: what a fallback through an open breaker adds, and a hanging primary.

Run: .venv/bin/python -m bench.fallback
"""

from __future__ import annotations

import statistics
import time

import httpx

from bench.harness import running_service, table
from tests.integration.fake_elevenlabs import API_KEY, FakeElevenLabs

PAIRS = 60
SHORT = "Fallback timing."


def timed_post(http: httpx.Client, body: dict[str, object]) -> tuple[float, dict[str, object]]:
    start = time.perf_counter()
    response = http.post("/api/tts", json=body)
    elapsed = 1000 * (time.perf_counter() - start)
    response.raise_for_status()
    return elapsed, dict(response.json())


def paired(http: httpx.Client, fallback: dict[str, object], direct: dict[str, object]) -> float:
    """Median over PAIRS of (fallback - direct) latency, requests alternated."""
    differences = []
    for _ in range(PAIRS):
        slow, body = timed_post(http, fallback)
        assert body["fallback"] is True, body
        fast, body = timed_post(http, direct)
        assert body["fallback"] is False, body
        differences.append(slow - fast)
    return float(statistics.median(differences))


def main() -> None:
    rows: list[tuple[str, str, str, str]] = []
    with FakeElevenLabs() as fake:
        fake.mode = "error500"
        env = {
            "TTS_PROVIDERS": "elevenlabs,piper",
            "ELEVENLABS_API_KEY": API_KEY,
            "ELEVENLABS_BASE_URL": fake.url,
            "ELEVENLABS_ATTEMPTS": "1",
        }
        with (
            running_service(**env) as service,
            httpx.Client(base_url=service.url, timeout=60) as http,
        ):
            for i in range(6):  # open the breaker
                timed_post(http, {"text": f"open {i}", "use_cache": False})
            state = http.get("/health").json()["components"]["tts"]["breakers"]["elevenlabs"]
            assert state == "open", state
            piper = {"voice": "en_US-joe-medium"}
            miss = paired(
                http,
                {"text": SHORT, "use_cache": False},
                {"text": SHORT, "use_cache": False, **piper},
            )
            timed_post(http, {"text": SHORT, **piper})  # cache it under piper
            hit = paired(http, {"text": SHORT}, {"text": SHORT, **piper})
        rows.append(
            (
                "open breaker, cache miss: fallback - direct Piper (median of 60 pairs)",
                f"{miss:+.2f} ms",
                "<= 2 ms",
                str(miss <= 2),
            )
        )
        rows.append(
            (
                "open breaker, cache hit: fallback - direct Piper (median of 60 pairs)",
                f"{hit:+.2f} ms",
                "<= 2 ms",
                str(hit <= 2),
            )
        )

        fake.mode = "hang"
        timeout, attempts = 1.0, 2
        env.update(ELEVENLABS_TIMEOUT_SECONDS=str(timeout), ELEVENLABS_ATTEMPTS=str(attempts))
        with (
            running_service(**env) as service,
            httpx.Client(base_url=service.url, timeout=60) as http,
        ):
            piper_ms = statistics.median(
                timed_post(http, {"text": SHORT, "use_cache": False, "voice": "en_US-joe-medium"})[
                    0
                ]
                for _ in range(5)
            )
            hung = [
                timed_post(http, {"text": f"{SHORT} {i}", "use_cache": False}) for i in range(3)
            ]
        bound = 1000 * timeout * attempts + 0.6 * 1000 + piper_ms  # + backoff between attempts
        worst = max(ms for ms, _ in hung)
        rows.append(
            (
                f"primary hangs ({attempts} attempts x {timeout:g} s timeout), worst of 3",
                f"{worst:.0f} ms (Piper alone {piper_ms:.0f} ms)",
                f"<= {bound:.0f} ms",
                str(worst <= bound),
            )
        )
    print(table(rows))


if __name__ == "__main__":
    main()
