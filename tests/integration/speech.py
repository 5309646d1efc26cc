"""Test speech made by the service itself (Piper), plus word error rate."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import functools
import re
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import jiwer

from adapters.piper_synthesizer import PiperSynthesizer, bundled_voice
from domain.speech import AudioClip

T = TypeVar("T")

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call me back tomorrow morning at the office.",
    "It is a beautiful day and I am very happy to be here.",
]


def words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(words(reference), words(hypothesis)))


def speak(
    http: httpx.Client, text: str, audio_format: str = "wav", voice: str | None = None
) -> bytes:
    body = {"text": text, "format": audio_format, **({"voice": voice} if voice else {})}
    response = http.post("/api/tts", json=body)
    response.raise_for_status()
    return base64.b64decode(response.json()["audio_base64"])


@functools.cache
def piper() -> PiperSynthesizer:
    return PiperSynthesizer([bundled_voice()])


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even where a loop is already running."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def piper_clip(text: str) -> AudioClip:
    """Raw Piper speech (22.05 kHz), straight from the adapter, before any processing."""
    voice = piper()
    return run_sync(voice.synthesize(text, voice.default_voice))


def speech_16k_pcm(text: str) -> bytes:
    """Piper speech as 16 kHz mono s16le, the format microphones stream."""
    from adapters.pyav_codec import PyAVAudioCodec
    from domain.speech import AudioFormat

    codec = PyAVAudioCodec()

    async def convert() -> bytes:
        wav = await codec.encode(piper_clip(text), AudioFormat.WAV)
        return (await codec.decode(wav, 16_000)).pcm

    return run_sync(convert())
