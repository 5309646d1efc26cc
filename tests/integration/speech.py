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


def word_errors(reference: str, hypothesis: str) -> int:
    """Words substituted, left out or added: what `wer` divides by the reference's length."""
    found = jiwer.process_words(words(reference), words(hypothesis))
    return int(found.substitutions + found.deletions + found.insertions)


def heard(reference: str, hypothesis: str) -> bool:
    """Is `hypothesis` what a correct service hears for Piper saying `reference`?

    Piper's speech varies run to run (its noise is random) and the tiny Whisper model mishears
    a word now and then: "quit" for "quick", "pairs" for "Paris", "police" for "please". In
    600 fresh round trips of ten test sentences (2 to 13 words, WAV and MP3), none had more
    than one word wrong, and one in 50 had one (besides "20" for "twenty", heard every time).
    Allowing none (WER 0.10 on nine words) failed about one run in 20 (the fox: 2 of 40);
    allowing one would leave no margin. So one word may be wrong, and one more in every eight:
    two in 8 to 15 words. A broken service is far past that: another test sentence's
    transcript has 75% or more of the words wrong, an empty or a half one half of them or
    more, and one cut three words short fails too.
    """
    return word_errors(reference, hypothesis) <= 1 + len(words(reference).split()) // 8


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
