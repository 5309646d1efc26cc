"""One-at-a-time figures: real-time factors, first streamed chunk, and the cached TTS load."""

from __future__ import annotations

import base64
import json
import statistics
import time
from dataclasses import dataclass

import httpx

from entrypoints.benchmark.load import LoadResult, keep_alive_load
from entrypoints.benchmark.service import Target
from entrypoints.benchmark.speech import seconds_of, silence, wav_16k

SENTENCES = (
    "The quick brown fox jumps over the lazy dog while the sun sets behind the hills.",
    "Please call me back tomorrow morning, because the office opens at nine.",
    "It is a beautiful day and I am very happy to be here with all of you.",
    "Our train leaves at half past six, so we should pack our bags tonight.",
    "The library will be closed on Monday for the spring holiday.",
    "She ordered a large coffee, two croissants and a glass of orange juice.",
    "If the weather stays dry, the concert will be held in the park.",
    "Remember to water the plants and to feed the cat while I am away.",
)
STREAMED = "Hello there! Thank you for calling, how can I help you with your booking today?"
CACHED = "Thank you for calling. All of our agents are busy; please stay on the line."


@dataclass(frozen=True)
class Ratio:
    """A real-time factor: service time over audio duration, median of `runs` requests."""

    median: float
    runs: int
    audio_seconds: float


async def tts_real_time_factor(http: httpx.AsyncClient, runs: int) -> Ratio:
    """Uncached synthesis: the whole `POST /api/tts` round trip over the audio it made."""
    ratios, audio = [], []
    await http.post("/api/tts", json={"text": "Warming up.", "use_cache": False})
    for i in range(runs):
        text = SENTENCES[i % len(SENTENCES)]
        started = time.perf_counter()
        response = await http.post("/api/tts", json={"text": text, "use_cache": False})
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        duration = float(response.json()["duration"])
        ratios.append(elapsed / duration)
        audio.append(duration)
    return Ratio(statistics.median(ratios), runs, statistics.mean(audio))


async def stt_real_time_factor(http: httpx.AsyncClient, speech: list[bytes], runs: int) -> Ratio:
    """`POST /api/stt` of a 16 kHz WAV of a few utterances, over its duration."""
    pcm = b"".join(clip + silence(0.4) for clip in speech[:3])
    body = {"audio_base64": base64.b64encode(wav_16k(pcm)).decode()}
    (await http.post("/api/stt", json=body)).raise_for_status()  # warm up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        (await http.post("/api/stt", json=body)).raise_for_status()
        times.append(time.perf_counter() - started)
    return Ratio(statistics.median(times) / seconds_of(pcm), runs, seconds_of(pcm))


async def first_chunk_ms(http: httpx.AsyncClient, runs: int) -> list[float]:
    """Uncached `POST /api/tts` with `stream: true`: request sent → first audio bytes."""
    body = {"text": STREAMED, "stream": True, "format": "pcm", "use_cache": False}
    timings = []
    for run in range(runs + 1):
        started = time.perf_counter()
        async with http.stream("POST", "/api/tts", json=body) as response:
            response.raise_for_status()
            first = None
            async for chunk in response.aiter_raw():
                if chunk and first is None:
                    first = time.perf_counter()
        if run and first is not None:  # the first run warms up
            timings.append(1000 * (first - started))
    return timings


async def cached_load(
    http: httpx.AsyncClient, target: Target, connections: int, seconds: float
) -> LoadResult:
    """One cached TTS answer (WAV, base64 JSON) asked for by every connection at once."""
    body = json.dumps({"text": CACHED}).encode()
    for _ in range(2):  # the first fills the cache
        response = await http.post(
            "/api/tts", content=body, headers={"content-type": "application/json"}
        )
        response.raise_for_status()
    if not response.json().get("cached"):
        raise RuntimeError("the cached TTS request was not answered from the cache")
    return await keep_alive_load(target.url, "/api/tts", body, target.headers, connections, seconds)
