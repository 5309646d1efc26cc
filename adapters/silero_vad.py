"""Streaming voice activity detection with the Silero VAD model shipped in faster-whisper."""

from __future__ import annotations

import numpy as np
from faster_whisper.vad import get_vad_model

WINDOW = 512  # samples at 16 kHz: 32 ms, the model's step
CONTEXT = 64  # samples of the previous window the model sees before each one


class SileroVadSession:
    """Carries the model's recurrent state and the leftover samples from frame to frame."""

    def __init__(self, session: object) -> None:
        self._session = session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._rest = np.zeros(0, dtype=np.float32)

    def probabilities(self, pcm: bytes) -> list[float]:
        samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
        audio = np.concatenate([self._rest, samples.astype(np.float32) / 32768.0])
        found: list[float] = []
        whole = len(audio) - len(audio) % WINDOW
        for start in range(0, whole, WINDOW):
            window = audio[start : start + WINDOW]
            batch = np.concatenate([self._context, window]).reshape(1, -1)
            output, self._h, self._c = self._session.run(  # type: ignore[attr-defined]
                None, {"input": batch, "h": self._h, "c": self._c}
            )
            self._context = window[-CONTEXT:]
            found.append(float(np.asarray(output).reshape(-1)[0]))
        self._rest = audio[whole:]
        return found


class SileroVoiceActivityDetector:
    """Voice activity port: one shared ONNX session, one state per stream (~0.1 ms a window)."""

    def __init__(self) -> None:
        self._model = get_vad_model()
        self.session().probabilities(b"\x00" * WINDOW * 2)  # warm up

    def session(self) -> SileroVadSession:
        return SileroVadSession(self._model.session)
