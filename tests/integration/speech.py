"""Test speech made by the service itself (Piper), plus word error rate."""

from __future__ import annotations

import base64
import re

import httpx
import jiwer

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call me back tomorrow morning at the office.",
    "It is a beautiful day and I am very happy to be here.",
]


def words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(words(reference), words(hypothesis)))


def speak(http: httpx.Client, text: str, audio_format: str = "wav") -> bytes:
    response = http.post("/api/tts", json={"text": text, "format": audio_format})
    response.raise_for_status()
    return base64.b64decode(response.json()["audio_base64"])
