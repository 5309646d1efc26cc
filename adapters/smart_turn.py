"""Semantic end-of-turn detection with Smart Turn v3.2 (Daily, BSD-2-Clause).

The model ships inside the pipecat-ai wheel (the `turn` extra). Only its ONNX file is used:
the `pipecat` package is never imported (its import pulls in loguru and logs). Features are
the Whisper log-mel of the last 8 s, as pipecat computes them, made by faster-whisper's
extractor (the same within 1e-5, tests/integration/test_smart_turn.py).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime
from faster_whisper.feature_extractor import FeatureExtractor

MODEL_IN_WHEEL = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
SAMPLE_RATE = 16_000
WINDOW_SECONDS = 8  # the model sees the last 8 s, left-padded with silence
WINDOW_SAMPLES = WINDOW_SECONDS * SAMPLE_RATE
WINDOW_BYTES = WINDOW_SAMPLES * 2  # s16le
NORMALISATION_EPSILON = 1e-7  # as transformers' WhisperFeatureExtractor


def bundled_turn_model() -> Path | None:
    """The Smart Turn model in the installed pipecat-ai wheel; None without the `turn` extra."""
    try:
        distribution = importlib.metadata.distribution("pipecat-ai")
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(distribution.locate_file(MODEL_IN_WHEEL)))
    return path if path.is_file() else None


def last_window(pcm: bytes) -> bytes:
    """The last 8 s of 16 kHz s16le audio, whole samples only (a trailing odd byte dropped)."""
    end = len(pcm) - len(pcm) % 2
    return pcm[max(0, end - WINDOW_BYTES) : end]


def load_session(model: Path) -> onnxruntime.InferenceSession:
    """One thread, sequential, sleeping when idle: a turn check must not starve STT or TTS."""
    options = onnxruntime.SessionOptions()
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(
        str(model), sess_options=options, providers=["CPUExecutionProvider"]
    )


class SmartTurn:
    """Turn detector port: the probability that the speaker has finished their turn.

    Inference runs in one dedicated thread, so calls never overlap and never block the event
    loop; each call converts at most the last 8 s of what it is given.
    """

    def __init__(self, model: Path) -> None:
        self._session = load_session(model)
        self._extractor = FeatureExtractor(chunk_length=WINDOW_SECONDS)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="smart-turn")
        # Warm up: the first ONNX run allocates; pay that at start-up, not on a turn.
        self._probability(b"")

    async def complete(self, pcm: bytes) -> float:
        """The utterance so far (16 kHz mono s16le) -> P(turn complete), 0..1."""
        window = last_window(pcm)  # queued calls hold 256 KB at most, not the utterance
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._probability, window)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def features(self, pcm: bytes) -> np.ndarray:
        """Whisper log-mel (80 x 800) of the last 8 s, left-padded with zeros, normalised."""
        samples = np.frombuffer(last_window(pcm), dtype="<i2").astype(np.float32) / 32768.0
        audio = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
        audio[WINDOW_SAMPLES - len(samples) :] = samples
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + NORMALISATION_EPSILON)
        return np.asarray(self._extractor(audio, padding=0), dtype=np.float32)

    def _probability(self, pcm: bytes) -> float:
        features = self.features(pcm)[np.newaxis]
        (output,) = self._session.run(None, {"input_features": features})
        return float(np.asarray(output).reshape(-1)[0])
