"""The playground in a real browser: Debian's Chromium driven by Playwright.

The microphone is Chromium's fake capture device, fed a WAV that Piper speaks at test time.
Screenshots go to $PLAYGROUND_SCREENSHOTS (default: a folder in the system temp dir), never
into the repository.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect

from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings
from tests.integration.conftest import CHROMIUM, FLAGS, RunningServer
from tests.integration.speech import speak, speech_16k_pcm
from tests.integration.test_streaming import to_wav

SHOTS = Path(
    os.environ.get("PLAYGROUND_SCREENSHOTS", Path(tempfile.gettempdir()) / "voicepipe-playground")
)
SPOKEN = "The weather is lovely today."


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def fake_mic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    silence = b"\x00\x00" * 16_000
    path = tmp_path_factory.mktemp("mic") / "speech.wav"
    path.write_bytes(to_wav(silence + speech_16k_pcm(SPOKEN) + silence * 3, 16_000))
    return path


def open_page(browser: Browser, server: RunningServer) -> Page:
    context = browser.new_context(
        permissions=["microphone"], viewport={"width": 1100, "height": 900}
    )
    page = context.new_page()
    page.goto(f"{server.url}/")
    expect(page.locator("#tts-voice option")).not_to_have_count(1)  # voices loaded
    return page


def test_speak_streams_and_plays_with_badges(browser: Browser, server: RunningServer) -> None:
    page = open_page(browser, server)
    page.fill(
        "#tts-text", "Streaming speech starts before the whole text is ready. Here is the rest."
    )
    page.click("#tts-go")
    expect(page.locator("#tts-badges")).to_contain_text("first audio", timeout=60_000)
    badges = page.inner_text("#tts-badges")
    for name in ("latency", "cache: miss", "provider: piper", "fallback: no", "sentiment"):
        assert name in badges, badges
    page.wait_for_function("document.querySelector('#tts-audio').duration > 1")
    page.wait_for_function(
        "window.voicepipe.playedSeconds > 0.5", timeout=30_000
    )  # Web Audio played
    shot(page, "speak-streamed")
    page.click("#tts-go")  # the same text again: from the cache
    expect(page.locator("#tts-badges")).to_contain_text("cache: hit", timeout=30_000)
    page.context.close()


def test_one_shot_formats_and_the_keyboard(browser: Browser, server: RunningServer) -> None:
    page = open_page(browser, server)
    unlabelled = page.evaluate(
        "() => [...document.querySelectorAll('input, select, textarea, button, canvas')]"
        ".filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')"
        " && !e.textContent.trim()).map(e => e.id)"
    )
    assert unlabelled == []  # every control has a label or a name
    page.select_option("#tts-format", "mp3")
    page.select_option("#tts-provider", "piper")
    page.fill("#tts-text", "A short clip in mp3.")
    page.focus("#tts-go")
    page.keyboard.press("Enter")
    expect(page.locator("#tts-status")).to_contain_text("of mp3", timeout=60_000)
    page.wait_for_function("document.querySelector('#tts-audio').duration > 0.5")
    assert "voice: en_US" in page.inner_text("#tts-badges")
    page.fill("#tts-text", "   ")
    page.click("#tts-go")
    expect(page.locator("#tts-status")).to_contain_text("Type something to say first")
    expect(page.locator("#tts-status")).to_have_class("status error")
    page.context.close()


def test_microphone_gives_partials_and_a_final(browser: Browser, server: RunningServer) -> None:
    page = open_page(browser, server)
    page.click("#mic")
    expect(page.locator("#mic")).to_have_attribute("aria-pressed", "true", timeout=10_000)
    page.wait_for_function("window.voicepipe.partials > 0", timeout=60_000)  # while speaking
    page.wait_for_function("window.voicepipe.finals.length > 0", timeout=60_000)
    final = page.inner_text("#finals li")
    assert "weather" in final.lower() and "lovely" in final.lower(), final
    assert "language: en" in final
    shot(page, "microphone")
    page.click("#mic")
    expect(page.locator("#mic")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#mic-status")).to_have_text("Stopped.")
    page.context.close()


def test_upload_shows_segments(
    browser: Browser, server: RunningServer, http: httpx.Client, tmp_path: Path
) -> None:
    clip = tmp_path / "clip.wav"
    clip.write_bytes(speak(http, "Please send the report by Friday. Thank you."))
    page = open_page(browser, server)
    page.set_input_files("#stt-file", str(clip))
    page.click("#stt-go")
    expect(page.locator("#stt-segments")).to_be_visible(timeout=60_000)
    assert "report" in page.inner_text("#stt-status").lower()
    first_row = page.locator("#stt-segments tbody tr").first.inner_text()
    assert "0.0" in first_row or "0." in first_row
    assert "language: en" in page.inner_text("#stt-badges")
    page.set_input_files(
        "#stt-file", {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not audio"}
    )
    page.click("#stt-go")
    expect(page.locator("#stt-status")).to_contain_text("not audio the service can read")
    page.context.close()


def test_stats_panel_follows_the_traffic(
    browser: Browser, server: RunningServer, http: httpx.Client
) -> None:
    page = open_page(browser, server)
    page.wait_for_function("window.voicepipe.statsUpdates > 0")
    before = page.inner_text("#stat-tts")
    done = int(before.split()[0])
    for i in range(2):
        assert http.post("/api/tts", json={"text": f"Counting request {i}."}).is_success
    expect(page.locator("#stat-tts")).to_contain_text(f"{done + 2} done", timeout=10_000)
    assert "ms" in page.inner_text("#stat-tts-latency")
    assert "piper: closed" in page.inner_text("#stat-breakers")
    page.wait_for_function("window.voicepipe.statsUpdates > 1")
    drawn = page.evaluate(
        "() => { const c = document.querySelector('#latency-chart');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"
    )
    assert drawn > 500  # axes and lines were drawn
    shot(page, "stats")
    page.context.close()


KEY = "playground-key-0123456789abcdef"


@pytest.fixture(scope="module")
def secured() -> Iterator[RunningServer]:
    with RunningServer(bootstrap(Settings(api_keys=(f"web:{KEY}",)))) as running:
        yield running


def test_asks_for_a_key_and_streams_through_a_token(
    browser: Browser, secured: RunningServer
) -> None:
    context = browser.new_context(permissions=["microphone"])
    page = context.new_page()
    page.goto(f"{secured.url}/")
    expect(page.locator("#key-form")).to_be_visible(timeout=10_000)
    expect(page.locator("#stats-status")).to_contain_text("needs an API key")
    page.fill("#api-key", KEY)
    page.click("#key-form button")
    expect(page.locator("#key-form")).to_be_hidden()
    expect(page.locator("#tts-voice option")).not_to_have_count(1)
    page.fill("#tts-text", "Keys work.")
    page.click("#tts-go")
    expect(page.locator("#tts-badges")).to_contain_text("first audio", timeout=60_000)
    page.wait_for_function("window.voicepipe.statsUpdates > 0")
    shot(page, "with-key")
    context.close()


def test_a_refused_microphone_is_explained(playwright: Playwright, server: RunningServer) -> None:
    plain = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
    try:
        context = plain.new_context()  # no microphone permission: getUserMedia is denied
        page = context.new_page()
        page.goto(f"{server.url}/")
        page.click("#mic")
        expect(page.locator("#mic-status")).to_contain_text("refused or is missing", timeout=10_000)
        expect(page.locator("#mic")).to_have_attribute("aria-pressed", "false")
        shot(page, "microphone-refused")
    finally:
        plain.close()
