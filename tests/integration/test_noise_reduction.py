"""Noise reduction (NOISE_REDUCTION) through a real protocol: Piper speech in a loud fan-like
noise, streamed over /ws/voice to a service with the filter and to one without, both on the
session service's models; the filtered one hears it about as well, within two words. (At
0 dB both usually hear every word; on a loaded machine the filtered stream has lost one; at
-5 dB the filter costs a word where Whisper alone does not: docs/PERFORMANCE.md, issue 26.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import msgspec
import numpy as np
import pytest
from websockets.sync.client import connect

from entrypoints.bootstrap import Container
from tests.integration.conftest import RunningServer, sharing_models
from tests.integration.speech import speech_16k_pcm, word_errors

SENTENCES = (
    "Please call me back tomorrow morning at the office.",
    "The weather is lovely today, so we should walk along the river after lunch.",
)


def fan(samples: int, seed: int) -> np.ndarray:
    """Brown noise, high end rolled off, with a 100 Hz hum: a fan or an engine room."""
    rng = np.random.default_rng(seed)
    brown = np.cumsum(rng.standard_normal(samples))
    brown -= np.convolve(brown, np.ones(400) / 400, mode="same")
    hum = np.sin(2 * np.pi * 100 * np.arange(samples) / 16_000)
    brown /= np.sqrt(np.mean(brown**2))
    return np.asarray(brown + 0.5 * hum / np.sqrt(np.mean(hum**2)))


def noisy(pcm: bytes, snr_db: float, seed: int) -> bytes:
    """0.5 s of noise, the speech in it at `snr_db`, 1 s of noise after (ends the turn)."""
    speech = np.frombuffer(pcm, "<i2").astype(np.float64)
    padded = np.concatenate((np.zeros(8000), speech, np.zeros(16_000)))
    noise = fan(len(padded), seed)
    noise *= np.sqrt(np.mean(speech**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return bytes(np.clip(padded + noise, -32768, 32767).astype("<i2").tobytes())


@pytest.fixture(scope="module")
def filtered_server(container: Container) -> Iterator[RunningServer]:
    settings = msgspec.structs.replace(container.settings, noise_reduction="near_field")
    with RunningServer(sharing_models(container, settings)) as running:
        yield running


def finals(ws_url: str, pcm: bytes, sizes: tuple[int, ...] = (640,)) -> list[dict[str, Any]]:
    with connect(ws_url, max_size=None) as ws:
        ws.send(json.dumps({"type": "stt_start", "sample_rate": 16000}))
        assert json.loads(ws.recv(timeout=10))["type"] == "stt_started"
        at, turn = 0, 0
        while at < len(pcm):
            size = sizes[turn % len(sizes)]
            ws.send(pcm[at : at + size])
            at, turn = at + size, turn + 1
        ws.send(json.dumps({"type": "stt_stop"}))
        messages = []
        while True:
            message = json.loads(ws.recv(timeout=60))
            assert message["type"] != "error", message
            messages.append(message)
            if message["type"] == "stt_stopped":
                return [m for m in messages if m["type"] == "final"]


def test_speech_in_noise_is_heard_about_as_well_with_the_filter(
    server: RunningServer, filtered_server: RunningServer
) -> None:
    plain_errors = filtered_errors = 0
    for seed, sentence in enumerate(SENTENCES):
        pcm = noisy(speech_16k_pcm(sentence), snr_db=0.0, seed=seed)
        plain = " ".join(f["text"] for f in finals(server.ws_url, pcm))
        cleaned = " ".join(f["text"] for f in finals(filtered_server.ws_url, pcm))
        plain_errors += word_errors(sentence, plain)
        filtered_errors += word_errors(sentence, cleaned)
    # The filter is made for listeners, not for Whisper (PERFORMANCE, issue 26): it may cost a
    # word, never the sentence. A broken filter (noise or silence out) fails both bounds.
    assert filtered_errors <= plain_errors + 2, (filtered_errors, plain_errors)
    assert filtered_errors <= 4  # of 23 words: heard, not merely no worse than a poor run


def test_odd_and_one_byte_frames_go_through_the_filter(
    server: RunningServer, filtered_server: RunningServer
) -> None:
    sentence = SENTENCES[0]
    pcm = noisy(speech_16k_pcm(sentence), snr_db=10.0, seed=7)
    heard = finals(filtered_server.ws_url, pcm, sizes=(1, 641, 3, 1279, 1))
    assert word_errors(sentence, " ".join(f["text"] for f in heard)) <= 2
    plain = finals(server.ws_url, pcm)
    # the filter's output lines up with its input: the utterance is timed as without it
    assert abs(heard[0]["start"] - plain[0]["start"]) <= 0.064
    assert abs(heard[-1]["end"] - plain[-1]["end"]) <= 0.064
