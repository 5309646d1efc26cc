"""A container stream (Ogg/Opus, WebM/Opus) decoded as it arrives, each byte once.

One worker thread per stream demuxes and decodes from a `_Pipe` whose read() blocks until the
client sends more bytes or finishes, however the client slices the container. feed() waits
for the worker to decode what it was given, so PCM comes back with the slice that completed it.

Bounds per stream: one thread; compressed bytes the decoder has not read yet (a feed() that
cannot get them under `max_pending` within `wait_seconds` raises AudioTooLarge); decoded PCM,
`max_held` bytes at most held by the worker (it pauses there) and returned by one call (more
raises AudioTooLarge: a decompression bomb); FFmpeg's 32 KiB read buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import weakref
from collections.abc import Callable

import av
import numpy as np
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler

from adapters.pyav_codec import check_shape
from adapters.pyav_resampling import RATE, frames_pcm
from domain.errors import AudioTooLarge, InvalidAudio, StepFailed, VoicePipeError

# encoding -> (FFmpeg demuxer, the bytes every such stream starts with); no format probing, so
# a WAV (or anything else) sent as `ogg` is refused instead of decoded.
CONTAINERS = {"ogg": ("ogg", b"OggS"), "webm": ("matroska", b"\x1a\x45\xdf\xa3")}
_OPTIONS = {"protocol_whitelist": "none"}
_AV_ERRORS = (av.FFmpegError, OSError, EOFError, ValueError)


class _Dropped(Exception):
    """The stream was closed: unwinds the worker."""


class _Pipe:
    """Compressed bytes from the event loop to the worker thread, 16 kHz PCM back; one lock.

    The worker is `settled` when it waits for bytes with none left, or has ended: then a
    feed() has all the PCM its bytes can give. `wake` (one-shot) tells the loop it settled,
    ended or holds `max_held` bytes of PCM.
    """

    def __init__(self, max_held: int) -> None:
        self._lock = threading.Condition()
        self._input = bytearray()
        self._output: list[bytes] = []
        self._held = 0
        self._max_held = max_held
        self._ended = False  # the client finished: read() gives EOF once the input is drained
        self._dropped = False  # closed: read() gives EOF at once, put() unwinds the worker
        self._idle = False
        self._done = False
        self._error: VoicePipeError | None = None
        self._wake: Callable[[], None] | None = None
        self.consumed = 0  # bytes handed to the demuxer
        self.produced = 0  # bytes of PCM decoded
        self.on_starve: Callable[[], None] | None = None  # the worker's, before read() blocks

    def read(self, size: int) -> bytes:
        """The demuxer's file: blocks until there are bytes, the client ends or the stream is
        dropped (b"": end of file)."""
        with self._lock:
            starving = not self._input and not self._ended and not self._dropped
        if starving and self.on_starve is not None:
            self.on_starve()  # hand back what was decoded before waiting for more
        with self._lock:
            while not self._input and not self._ended and not self._dropped:
                self._idle = True
                self._signal()
                self._lock.wait()
            if self._dropped:
                return b""
            data = bytes(self._input[:size])
            del self._input[:size]
            self.consumed += len(data)
            return data

    def put(self, pcm: bytes) -> None:
        with self._lock:
            while self._held >= self._max_held and not self._dropped:
                self._signal()
                self._lock.wait()
            if self._dropped:
                raise _Dropped
            self._output.append(pcm)
            self._held += len(pcm)
            self.produced += len(pcm)

    def end(self, error: VoicePipeError | None) -> None:
        with self._lock:
            self._done = True
            self._error = error
            self._signal()

    def _signal(self) -> None:
        wake, self._wake = self._wake, None
        if wake is not None:
            wake()

    @property
    def pending(self) -> int:
        return len(self._input)

    def push(self, data: bytes) -> None:
        with self._lock:
            if self._done or self._dropped:
                return  # nothing will read it: bytes after the container's end are ignored
            self._input += data
            self._idle = False
            self._lock.notify_all()

    def end_of_input(self) -> None:
        with self._lock:
            self._ended = True
            self._idle = False
            self._lock.notify_all()

    def drop(self) -> None:
        with self._lock:
            self._dropped = True
            self._input.clear()
            self._output.clear()
            self._held = 0
            self._lock.notify_all()

    def take(self, wake: Callable[[], None]) -> tuple[bytes, bool]:
        """The PCM decoded so far and whether the worker settled; else `wake` is armed."""
        with self._lock:
            if self._error is not None:
                raise self._error
            pcm = b"".join(self._output)
            self._output.clear()
            self._held = 0
            self._lock.notify_all()
            settled = self._done or self._idle
            self._wake = None if settled else wake
            return pcm, settled


class ContainerStream:
    """Ogg or WebM bytes in arbitrary slices, demuxed and decoded once by a worker thread.

    One caller at a time. feed() waits (up to `wait` seconds) for the worker to decode what
    it was given: the worker is at most one slice behind, and a client cannot outrun it.
    """

    def __init__(
        self, encoding: str, max_pending: int, max_held: int, wait: float, shape: tuple[int, int]
    ) -> None:
        self._encoding = encoding
        self._demuxer, self._magic = CONTAINERS[encoding]
        self._max_pending, self._max_held, self._wait = max_pending, max_held, wait
        self._shape = shape
        self._pipe = _Pipe(max_held)
        self._head = b""
        self._worker: threading.Thread | None = None
        self._open = True
        weakref.finalize(self, self._pipe.drop)  # a stream dropped without close() stops too

    @property
    def consumed_bytes(self) -> int:
        """Compressed bytes handed to the demuxer so far: each byte fed, once."""
        return self._pipe.consumed

    async def feed(self, data: bytes) -> bytes:
        if not self._open:
            return b""
        try:
            self._admit(data)
            if data:
                self._pipe.push(data)
            if self._worker is None:
                return b""
            pcm = await self._collect(finishing=False)
            if self._pipe.pending > self._max_pending:
                raise AudioTooLarge(
                    f"the {self._encoding} stream is more than {self._max_pending} bytes "
                    "ahead of its decoder"
                )
            return pcm
        except VoicePipeError:
            self.close()
            raise

    async def finish(self) -> bytes:
        if not self._open:
            return b""
        try:
            if self._worker is None:
                raise InvalidAudio("the audio ended before its first bytes")
            self._pipe.end_of_input()
            pcm = await self._collect(finishing=True)
            if not self._pipe.produced:
                raise InvalidAudio("audio contains no samples")
            return pcm
        finally:
            self.close()

    def close(self) -> None:
        self._open = False
        self._pipe.drop()

    def _admit(self, data: bytes) -> None:
        """Refuse what is not this container from its first bytes; start the worker then."""
        if len(self._head) >= len(self._magic):
            return
        self._head += data[: len(self._magic) - len(self._head)]
        if not self._magic.startswith(self._head):
            raise InvalidAudio(f"the audio is not {self._encoding}")
        if len(self._head) == len(self._magic):
            self._worker = threading.Thread(
                target=_decode,
                args=(self._pipe, self._demuxer, self._shape),
                name=f"{self._encoding}-decoder",
                daemon=True,
            )
            self._worker.start()

    async def _collect(self, finishing: bool) -> bytes:
        """PCM until the worker settles (or ends, when finishing), within the wait bound."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        chunks: list[bytes] = []
        size = 0
        while True:
            woken = loop.create_future()
            pcm, settled = self._pipe.take(functools.partial(_wake, loop, woken))
            chunks.append(pcm)
            size += len(pcm)
            if size > self._max_held:
                raise AudioTooLarge(f"the {self._encoding} audio decodes to too many seconds")
            remaining = deadline - loop.time()
            if settled or (remaining <= 0 and not finishing):
                return b"".join(chunks)
            if remaining <= 0:
                raise StepFailed("decode", "the audio decoder fell behind; try again shortly")
            await asyncio.wait([woken], timeout=remaining)


def _wake(loop: asyncio.AbstractEventLoop, woken: asyncio.Future[None]) -> None:
    """From the worker: resolve the loop's future (a loop already closed has no one waiting)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_resolve, woken)


def _resolve(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)


def _decode(pipe: _Pipe, demuxer: str, shape: tuple[int, int]) -> None:
    """The worker thread: decode until the input ends, then flush; report how it ended."""
    error: VoicePipeError | None = None
    try:
        _decode_into(pipe, demuxer, shape)
    except _Dropped:
        pass
    except VoicePipeError as exc:
        error = exc
    finally:
        pipe.end(error)


class _Batches:
    """Decoded frames (20 ms for Opus) resampled ~200 ms at a time: the resampler's cost per
    call, not per sample, dominates at 20 ms; put back before the worker waits for bytes."""

    def __init__(self, pipe: _Pipe) -> None:
        self._pipe = pipe
        self._frames: list[AudioFrame] = []
        self._samples = 0
        self._resampler = AudioResampler(format="s16", layout="mono", rate=RATE)

    def add(self, frame: AudioFrame) -> None:
        self._frames.append(frame)
        self._samples += frame.samples
        if self._samples >= frame.sample_rate // 5:
            self.flush()

    def flush(self) -> None:
        if not self._frames:
            return
        first = self._frames[0]
        joined = np.concatenate([frame.to_ndarray() for frame in self._frames], axis=1)
        batch = AudioFrame.from_ndarray(joined, format=first.format.name, layout=first.layout)
        batch.sample_rate = first.sample_rate
        self._frames.clear()
        self._samples = 0
        self._pipe.put(frames_pcm(self._resampler.resample(batch)))

    def finish(self) -> None:
        self.flush()
        self._pipe.put(frames_pcm(self._resampler.resample(None)))


def _decode_into(pipe: _Pipe, demuxer: str, shape: tuple[int, int]) -> None:
    try:
        container = av.open(pipe, mode="r", format=demuxer, container_options=_OPTIONS)
    except _AV_ERRORS as exc:
        raise InvalidAudio("not a recognised audio stream") from exc
    with container:
        if not container.streams.audio:
            raise InvalidAudio("the stream has no audio track")
        stream = container.streams.audio[0]
        check_shape(stream.channels, stream.sample_rate, shape)
        batches = _Batches(pipe)
        pipe.on_starve = batches.flush
        try:
            for frame in container.decode(stream):
                batches.add(frame)
            batches.finish()
        except _AV_ERRORS as exc:
            raise InvalidAudio("audio is truncated or corrupt") from exc
