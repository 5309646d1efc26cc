"""What a key is charged for speech over HTTP: only text that was spoken. A request refused for
its own values (too long for its speed, an unknown format or voice, empty text, a speed out of
range) costs nothing, so a client cannot burn a key's day with refusals (issue 25)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from entrypoints.bootstrap import Container
from entrypoints.settings import Settings
from tests.integration.conftest import RunningServer, sharing_models

KEY = "speech-charges-k3y-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
DAY = 100  # TTS characters a day


@pytest.fixture(scope="module")
def keyed(container: Container) -> Iterator[RunningServer]:
    settings = Settings(api_keys=(KEY,), tts_chars_per_day=DAY)  # max_text_chars: 5000
    with RunningServer(sharing_models(container, settings)) as running:
        yield running


def test_refused_tts_requests_cost_nothing(keyed: RunningServer) -> None:
    """Five requests refused for their values, then one of exactly the day's 100 characters:
    the refusals were not charged, so it is spoken, and usage says 100 were used."""
    refused = [
        # 2000 characters at speed 0.25: the limit there is 5000 * 0.25 = 1250.
        ({"text": "a" * 2000, "speed": 0.25}, 413, "text_too_long"),
        ({"text": "Hello there.", "format": "wma"}, 400, "unsupported_format"),
        ({"text": "   "}, 400, "empty_text"),
        ({"text": "Hello there.", "speed": 9}, 400, "invalid_request"),
        ({"text": "Hello there.", "voice": "no-such-voice"}, 400, "unknown_voice"),
    ]
    text = (
        "The kitchen lights are on, the front door is locked and the alarm is set, "
        "so rest well now, my dear."
    )
    assert len(text) == DAY  # as normalized too: single spaces, nothing to trim
    with httpx.Client(base_url=keyed.url, timeout=60, headers=AUTH) as http:
        answers = []
        for body, _, _ in refused:
            response = http.post("/api/tts", json=body)
            answers.append((response.status_code, response.json().get("code")))
        spoken = http.post("/api/tts", json={"text": text})
        usage = http.get("/v1/usage")
    # Each refused for its own reason, then the 100 characters spoken: nothing was charged.
    assert [*answers, spoken.status_code] == [
        *((status, code) for _, status, code in refused),
        200,
    ], spoken.text
    assert spoken.json()["audio_base64"]
    assert usage.status_code == 200, usage.text
    assert usage.json()["tts_characters"]["used"] == DAY
