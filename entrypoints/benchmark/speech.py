"""Speech for the STT figures, spoken by the measured service itself (offline, no files)."""

from __future__ import annotations

import base64
import io
import wave

import httpx

from entrypoints import wiring
from entrypoints.settings import Settings

RATE = 16_000  # what microphones stream and the model hears
FRAME_BYTES = 640  # 20 ms of 16 kHz s16le

UTTERANCES = (
    "Good morning, I would like to book a table for two people tonight.",
    "Could we sit near the window if that is possible?",
    "We will arrive at around eight o'clock in the evening.",
    "My name is Alex and my phone number ends in four two.",
    "Please let me know if anything changes before then.",
    "Thank you very much, that is perfect for us.",
)


async def spoken_utterances(
    url: str, headers: dict[str, str], texts: tuple[str, ...] = UTTERANCES
) -> list[bytes]:
    """Each text as 16 kHz mono s16le PCM, synthesized by the service at `url`."""
    codec = wiring.codec(Settings())  # resampled as an upload is, off the event loop
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as http:
        clips = []
        for text in texts:
            response = await http.post("/api/tts", json={"text": text, "format": "wav"})
            response.raise_for_status()
            wav = base64.b64decode(response.json()["audio_base64"])
            clips.append((await codec.decode(wav, RATE)).pcm)
        return clips


def wav_16k(pcm: bytes) -> bytes:
    """16 kHz mono s16le PCM in a WAV container, as a user's upload would be."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return out.getvalue()


def seconds_of(pcm: bytes) -> float:
    return len(pcm) / (2 * RATE)


def silence(seconds: float) -> bytes:
    return b"\x00\x00" * int(RATE * seconds)
