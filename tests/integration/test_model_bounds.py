"""Work per request is bounded before it starts, with the real models: STT models are picked
by configured name only and share one bounded queue; Piper never gets more than a bounded
piece of text, runs at most `workers` inferences at once, and refuses past its queue.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from adapters.faster_whisper_transcriber import bundled_model
from adapters.piper_synthesizer import PiperSynthesizer, bundled_voice
from application.ports import TranscriptionJob
from domain.errors import Busy
from domain.speech import AudioClip, Transcript
from entrypoints import speech_models
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings
from tests.integration.conftest import RunningServer, SteppedClock

ROOT = Path(__file__).resolve().parents[2]
WORD = ("antidisestablishmentarianism" * 200)[:4900]  # one unbroken 4,900-character "word"
SECOND = bundled_model()  # configured again under another name: a second model in memory


def silence_wav(seconds: float = 1.0) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(b"\x00\x00" * int(16_000 * seconds))
    return out.getvalue()


@pytest.fixture(scope="module")
def models() -> Any:
    """The served STT models (WhisperModels), built as the service builds them."""
    return speech_models.transcriber(Settings(whisper_models=(f"second={SECOND}",)))


@pytest.fixture(scope="module")
def served(models: Any) -> Iterator[RunningServer]:
    settings = Settings(whisper_models=(f"second={SECOND}",))
    with RunningServer(bootstrap(settings, transcriber=models, clock=SteppedClock())) as running:
        yield running


@pytest.fixture(scope="module")
def http(served: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=60) as client:
        yield client


def transcribe(http: httpx.Client, model: str) -> httpx.Response:
    files = {"file": ("silence.wav", silence_wav(), "audio/wav")}
    return http.post("/v1/audio/transcriptions", data={"model": model}, files=files)


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def test_a_path_as_model_gets_one_answer_whether_or_not_it_exists(
    http: httpx.Client, tmp_path: Path
) -> None:
    (tmp_path / "not-a-model").mkdir()
    asked = [
        str(SECOND),  # a real model directory, configured under a name
        str(tmp_path / "not-a-model"),  # a directory that is no model
        str(tmp_path / "missing"),  # nothing there
        "../x",
        "large-v9",
    ]
    answers = [transcribe(http, model) for model in asked]
    assert {a.status_code for a in answers} == {400}
    bodies = [a.json() for a in answers]
    assert bodies[0]["error"]["code"] == "unknown_model"
    assert "second" in bodies[0]["error"]["message"]
    assert all(body == bodies[0] for body in bodies), bodies  # no filesystem oracle


def test_spellings_of_a_model_directory_load_nothing(http: httpx.Client, models: Any) -> None:
    assert transcribe(http, "second").status_code == 200  # the configured name works
    assert list(models.loaded()) == ["second"]
    relative = os.path.relpath(SECOND)
    spellings = [
        str(SECOND),
        f"{SECOND}/",
        f"{SECOND}//",
        f"{SECOND}/.",
        f"{SECOND}/./",
        f"{SECOND}/../{SECOND.name}",
        relative,
        f"./{relative}/",
    ]
    before = rss_mb()
    answers = [transcribe(http, spelling).status_code for spelling in spellings]
    grown = rss_mb() - before
    assert answers == [400] * 8
    assert list(models.loaded()) == ["second"]
    assert grown < 60, f"RSS grew {grown:.0f} MB over 8 spellings (a model is ~90 MB)"


async def test_every_model_shares_one_bounded_queue() -> None:
    models: Any = speech_models.transcriber(
        Settings(whisper_models=(f"second={SECOND}",), stt_queue_max=2)
    )
    clip = AudioClip(b"\x00\x00" * 16_000, 16_000)
    await models.transcribe(TranscriptionJob(clip, model="second"))  # loaded before the burst
    burst = [models.transcribe(TranscriptionJob(clip, model=m)) for m in [None, "second"] * 3]
    results = await asyncio.gather(*burst, return_exceptions=True)
    assert sum(isinstance(r, Transcript) for r in results) == 2  # not 2 per model
    assert sum(isinstance(r, Busy) for r in results) == 4
    assert models.queued == 0


def test_one_4900_character_word_keeps_piper_memory_bounded() -> None:
    script = (
        "import asyncio, json, psutil\n"
        "from adapters.piper_synthesizer import PiperSynthesizer, bundled_voice\n"
        "piper = PiperSynthesizer([bundled_voice()])\n"
        "before = psutil.Process().memory_info().rss\n"
        f"clip = asyncio.run(piper.synthesize({WORD!r}, piper.default_voice))\n"
        "after = psutil.Process().memory_info().rss\n"
        "print(json.dumps([(after - before) / 2**20, clip.duration_ms]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    grown, duration_ms = json.loads(out.stdout.splitlines()[-1])
    assert duration_ms > 60_000  # it was all spoken
    # In one inference this word took 1.4 GB (and kept it); in bounded pieces about 0.2 GB.
    assert grown < 600, f"RSS grew {grown:.0f} MB"


class RecordingVoice:
    """Stands in for a Piper voice: records what it is given, speaks nothing (real config)."""

    def __init__(self, voice: Any, gate: threading.Event | None, hold: float) -> None:
        self.config = voice.config
        self.gate = gate
        self.hold = hold
        self.texts: list[str] = []
        self.active = self.most = 0
        self._lock = threading.Lock()

    def synthesize(self, text: str, config: Any = None) -> Iterator[Any]:
        with self._lock:
            self.texts.append(text)
            self.active += 1
            self.most = max(self.most, self.active)
        if self.gate is not None:
            self.gate.wait(30)
        time.sleep(self.hold)
        with self._lock:
            self.active -= 1
        yield from ()


def recorded(
    piper: PiperSynthesizer, gate: threading.Event | None = None, hold: float = 0.0
) -> RecordingVoice:
    voice = RecordingVoice(piper._voices[piper.default_voice], gate, hold)
    piper._voices = {piper.default_voice: voice}  # type: ignore[dict-item]
    return voice


@pytest.mark.parametrize(("speed", "bound"), [(1.0, 200), (0.25, 50)])
async def test_piper_gets_bounded_pieces_smaller_when_slower(speed: float, bound: int) -> None:
    piper = PiperSynthesizer([bundled_voice()])
    voice = recorded(piper)
    await piper.synthesize(f"Hello. {WORD}, and more.", piper.default_voice, speed)
    assert max(len(t) for t in voice.texts) <= bound
    assert "".join("".join(voice.texts).split()) == f"Hello.{WORD},andmore."


async def test_piper_runs_at_most_workers_inferences_at_once() -> None:
    piper = PiperSynthesizer([bundled_voice()], workers=2)
    voice = recorded(piper, hold=0.05)  # long enough for the calls to overlap, if they may
    await asyncio.gather(*(piper.synthesize("Hi.", piper.default_voice) for _ in range(8)))
    assert len(voice.texts) == 8
    assert voice.most <= 2


async def test_piper_past_its_queue_is_busy_and_a_caller_that_leaves_stops() -> None:
    piper = PiperSynthesizer([bundled_voice()], max_queue=1, workers=1)
    gate = threading.Event()
    voice = recorded(piper, gate)
    first = asyncio.create_task(piper.synthesize(f"One. Two. {WORD}", piper.default_voice))
    for _ in range(5000):  # until its first piece is in Piper's hands
        if voice.texts:
            break
        await asyncio.sleep(0.001)
    with pytest.raises(Busy):
        await piper.synthesize("Hello.", piper.default_voice)
    first.cancel()  # the caller leaves while its first piece is being spoken
    with pytest.raises(asyncio.CancelledError):
        await first
    gate.set()
    piper._pool.shutdown(wait=True)
    assert voice.texts == ["One."]  # nothing more was synthesized for it
