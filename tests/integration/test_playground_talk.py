"""The playground's Talk panel in a real browser: Debian's Chromium, driven by Playwright,
holds the button while its fake microphone speaks (Piper, at test time) and the service
answers over /v1/realtime with a fake chat model's words, spoken.

As in test_playground.py, screenshots go to $PLAYGROUND_SCREENSHOTS (default: a folder in the
system temp dir).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from entrypoints.bootstrap import Container
from entrypoints.settings import Settings
from tests.integration.conftest import RunningServer, sharing_models
from tests.integration.fake_llm import FakeLLM
from tests.integration.speech import speech_16k_pcm
from tests.integration.test_playground import shot
from tests.integration.test_streaming import to_wav

SPOKEN = "What is the weather like today?"
HOLD_MS = 3_000
RATE = 24_000  # the Talk panel's PCM, both ways
TALK_CHECK_MS = 1_500  # app.js: how long after letting go it looks whether speech was heard
KEY = "talk-key-0123456789abcdef"
# A long first sentence (seconds of speech, playing when the user talks over it) and more
# words still streaming from the model then.
LONG_ANSWER = (
    "Sure, it is sunny this morning with a light wind from the west and a few clouds later on. "
    "Tonight it will be clear and cool. Tomorrow brings rain in the afternoon, so take a coat."
)


@pytest.fixture(scope="module")
def fake_mic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Half a second of silence, the question, then silence: the microphone starts at the top
    of the file when the button is pressed, so the question falls inside the hold."""
    silence = b"\x00\x00" * 16_000
    path = tmp_path_factory.mktemp("talk-mic") / "question.wav"
    path.write_bytes(to_wav(silence[:16_000] + speech_16k_pcm(SPOKEN) + silence * 4, 16_000))
    return path


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


def talking_server(
    container: Container, llm: FakeLLM, api_keys: tuple[str, ...] = ()
) -> RunningServer:
    """A service with a chat model (the fake), sharing the session's loaded models."""
    return RunningServer(
        sharing_models(container, Settings(llm_base_url=llm.url, api_keys=api_keys))
    )


@pytest.fixture(scope="module")
def talking(container: Container, llm: FakeLLM) -> Iterator[RunningServer]:
    with talking_server(container, llm) as running:
        yield running


@pytest.fixture(scope="module")
def secured(container: Container, llm: FakeLLM) -> Iterator[RunningServer]:
    with talking_server(container, llm, (f"web:{KEY}",)) as running:
        yield running


def hold_and_talk(page: Page) -> None:
    """Press the Talk button, hold it while the microphone asks the question, let go."""
    button = page.locator("#talk-hold")
    button.hover()
    page.mouse.down()
    expect(button).to_have_attribute("aria-pressed", "true")
    page.wait_for_timeout(HOLD_MS)
    page.mouse.up()
    expect(button).to_have_attribute("aria-pressed", "false")


def assert_a_spoken_answer(page: Page, llm: FakeLLM) -> None:
    page.wait_for_function("window.voicepipe.talkResponses > 0", timeout=60_000)
    user = page.inner_text("#talk-user")
    assert "weather" in user.lower() and "today" in user.lower(), user
    assert page.inner_text("#talk-assistant") == llm.answer
    asked = llm.requests[-1]["messages"][-1]
    assert asked["role"] == "user" and "weather" in str(asked["content"]).lower(), asked
    # Audio went out at 24 kHz while held (plus the tail of silence), and the answer played.
    sent = page.evaluate("window.voicepipe.talkSentSamples")
    assert sent >= RATE * (HOLD_MS / 1000 - 0.5), sent
    page.wait_for_function(f"window.voicepipe.talkPlayedSamples > {RATE // 2}", timeout=30_000)
    expect(page.locator("#talk-status")).not_to_have_class("status error")


def test_holding_the_button_talks_with_the_model(
    browser: Browser, talking: RunningServer, llm: FakeLLM
) -> None:
    context = browser.new_context(
        permissions=["microphone"], viewport={"width": 1100, "height": 900}
    )
    try:
        page = context.new_page()
        page.goto(f"{talking.url}/")
        asked_before = len(llm.requests)
        hold_and_talk(page)
        assert_a_spoken_answer(page, llm)
        assert len(llm.requests) == asked_before + 1  # one answer for one turn
        expect(page.locator("#talk-status")).to_contain_text("Your turn", timeout=10_000)
        shot(page, "talk")
    finally:
        context.close()


def test_talking_over_the_answer_stops_it(
    browser: Browser, talking: RunningServer, llm: FakeLLM
) -> None:
    context = browser.new_context(permissions=["microphone"])
    answer, llm.answer = llm.answer, LONG_ANSWER
    llm.token_delay = 0.15  # the answer is still coming when the user talks again
    try:
        page = context.new_page()
        page.goto(f"{talking.url}/")
        hold_and_talk(page)
        page.wait_for_function(f"window.voicepipe.talkPlayedSamples > {RATE // 4}", timeout=60_000)
        llm.answer = answer  # for the next question (the long answer is already streaming)
        hold_and_talk(page)  # over the answer: the server hears speech start, playback stops
        page.wait_for_function("window.voicepipe.talkResponses > 1", timeout=60_000)
        turns = page.evaluate("window.voicepipe.talkTurns")
        assert [turn["status"] for turn in turns] == ["cancelled", "completed"], turns
        # Speech started over the answer; whatever of it was queued to play was stopped (on a
        # loaded machine the answer's audio may not have been ahead of the speaker just then).
        queued = page.evaluate("window.voicepipe.talkBargeIns")
        assert queued, "speech started over the answer"
        assert page.evaluate("window.voicepipe.talkInterruptions") >= (1 if queued[0] else 0)
        assert len(turns[0]["assistant"]) < len(LONG_ANSWER)  # cut short
        assert "weather" in turns[1]["user"].lower(), turns
        assert turns[1]["assistant"] == answer
        expect(page.locator("#talk-history li")).to_have_count(1)
    finally:
        llm.answer, llm.token_delay = answer, 0.0
        context.close()


def test_without_a_chat_model_the_panel_says_so_from_the_start(
    browser: Browser, server: RunningServer
) -> None:
    context = browser.new_context(permissions=["microphone"])
    try:
        page = context.new_page()
        page.goto(f"{server.url}/")  # the session's service: no LLM_BASE_URL
        status = page.locator("#talk-status")
        expect(status).to_contain_text("LLM_BASE_URL", timeout=10_000)  # before any talk
        expect(status).to_have_class("status error")
        expect(page.locator("#talk-hold")).to_be_disabled()
        shot(page, "talk-no-model")
    finally:
        context.close()


def test_the_page_tool_runs_in_the_browser_and_the_model_answers_its_result(
    browser: Browser, talking: RunningServer, llm: FakeLLM
) -> None:
    context = browser.new_context(permissions=["microphone"])
    llm.script = [
        {"calls": [{"id": "call_time", "name": "get_local_time", "arguments": "{}"}]},
        {"text": "It is time for lunch."},
    ]
    try:
        page = context.new_page()
        page.goto(f"{talking.url}/")
        hold_and_talk(page)
        page.wait_for_function("window.voicepipe.talkResponses > 0", timeout=60_000)
        tools = page.locator("#talk-tools li")
        expect(tools).to_have_count(1)
        expect(tools).to_contain_text("get_local_time({}) → ")
        expect(tools).to_contain_text("local_time")
        assert page.inner_text("#talk-assistant") == "It is time for lunch."
        turns = page.evaluate("window.voicepipe.talkTurns")
        assert len(turns) == 1 and turns[0]["status"] == "completed", turns
        answered = llm.requests[-1]["messages"]
        assert answered[-1]["role"] == "tool" and answered[-1]["tool_call_id"] == "call_time"
        assert "local_time" in answered[-1]["content"]
        expect(page.locator("#talk-status")).to_contain_text("Your turn", timeout=10_000)
        assert [t["function"]["name"] for t in llm.requests[-1]["tools"]] == ["get_local_time"]
        shot(page, "talk-tool")
    finally:
        llm.script = []
        context.close()


def test_an_answer_begun_early_and_dropped_is_marked_on_the_turn(
    browser: Browser, talking: RunningServer, llm: FakeLLM
) -> None:
    """The page asks for the server's `voicepipe.speculation.dropped` events; the turn model
    cannot be made to hesitate on cue, so the event is handed to the page's own handler."""
    context = browser.new_context(permissions=["microphone"])
    urls: list[str] = []
    try:
        page = context.new_page()
        page.on("websocket", lambda socket: urls.append(socket.url))
        page.goto(f"{talking.url}/")
        hold_and_talk(page)
        page.wait_for_function("window.voicepipe.talkResponses > 0", timeout=60_000)
        assert any("voicepipe_events=speculation" in url for url in urls), urls
        dropped = {"type": "voicepipe.speculation.dropped", "transcript": "What is the weather"}
        page.evaluate("(m) => onTalkMessage({ data: JSON.stringify(m) })", dropped)
        marked = page.locator("#talk-tools li.dropped")
        expect(marked).to_have_count(1)
        expect(marked).to_contain_text("“What is the weather” was dropped")
        shot(page, "talk-dropped")
    finally:
        context.close()


def test_talk_with_an_api_key_uses_a_client_secret(
    browser: Browser, secured: RunningServer, llm: FakeLLM
) -> None:
    context = browser.new_context(permissions=["microphone"])
    try:
        page = context.new_page()
        secrets: list[int] = []
        page.on(
            "response",
            lambda r: secrets.append(r.status) if "/v1/realtime/client_secrets" in r.url else None,
        )
        page.goto(f"{secured.url}/")
        expect(page.locator("#key-form")).to_be_visible(timeout=10_000)
        page.fill("#api-key", KEY)
        page.click("#key-form button")
        expect(page.locator("#key-form")).to_be_hidden()
        hold_and_talk(page)
        assert_a_spoken_answer(page, llm)
        assert secrets == [200]
    finally:
        context.close()
