"""Speech for the STT figures, spoken by the measured service itself (offline, no files)."""

from __future__ import annotations

import base64
import io
import wave

import httpx

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
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as http:
        clips = []
        for text in texts:
            response = await http.post("/api/tts", json={"text": text, "format": "wav"})
            response.raise_for_status()
            clips.append(to_16k_pcm(base64.b64decode(response.json()["audio_base64"])))
        return clips


def to_16k_pcm(wav_bytes: bytes) -> bytes:
    """A WAV file as 16 kHz mono s16le, resampled by PyAV (a dependency of faster-whisper)."""
    import av

    out = bytearray()
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    with av.open(io.BytesIO(wav_bytes), "r") as source:
        for frame in source.decode(audio=0):
            for converted in resampler.resample(frame):
                out += bytes(converted.planes[0])[: converted.samples * 2]
    for converted in resampler.resample(None):
        out += bytes(converted.planes[0])[: converted.samples * 2]
    return bytes(out)


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
