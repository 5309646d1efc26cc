"""Streams for the unit tests: audio the fake VAD hears as speech, silence, a faint or an
unsure sound, fake models, and an UtteranceStream that records what it emits.

The fake VAD hears speech in a 32 ms window whose first sample is non-zero, so `speech(ms)`
and `silence(ms)` in multiples of 32 ms line up with its windows.
"""

from __future__ import annotations

import asyncio
from typing import Any

from application.ports import Clock, TranscriptionJob
from application.transcribe_stream import (
    Failed,
    Final,
    Partial,
    SpeechStarted,
    SpeechStopped,
    StreamEvent,
    UtteranceStream,
)
from domain.speech import Transcript
from domain.utterances import Endpointing
from tests.unit.conftest import FakeWorld
from tests.unit.fakes import Broken, FakeTranscriber, FakeVadSession, StillClock

BYTES_PER_MS = 32
WINDOW = 32 * BYTES_PER_MS
PREROLL_BYTES = Endpointing().preroll_ms * BYTES_PER_MS

Heard = list[Partial | Final | Failed]


def speech(ms: int) -> bytes:
    return b"\x01\x00" * (16 * ms)


def silence(ms: int) -> bytes:
    return b"\x00\x00" * (16 * ms)


def faint(ms: int) -> bytes:
    return b"\x02\x00" * (16 * ms)


class ClipLengths(FakeTranscriber):
    """Answers with the length of the clip it heard; with `hold`, the first final waits for
    `release` (a slow model on the first utterance)."""

    def __init__(self, hold: bool = False) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.hold = hold

    async def transcribe(self, job: TranscriptionJob, progress: Any = None) -> Transcript:
        if self.hold and job.kind != "draft":
            self.hold = False
            await self.release.wait()
        self.text = f"{job.clip.duration_ms:.0f} ms"
        return await super().transcribe(job)


class FailingFinals(FakeTranscriber):
    """Raises `error` for final transcriptions while it is set; drafts still work."""

    def __init__(self) -> None:
        super().__init__()
        self.error: Exception | None = None

    async def transcribe(self, job: TranscriptionJob, progress: Any = None) -> Transcript:
        if self.error is not None and job.kind != "draft":
            raise self.error
        return await super().transcribe(job)


class HeldDrafts(FakeTranscriber):
    """Drafts wait for `release` (a slow model while the speaker goes on)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.held = 0  # drafts asked for

    async def transcribe(self, job: TranscriptionJob, progress: Any = None) -> Transcript:
        if job.kind == "draft":
            self.held += 1
            await self.release.wait()
        return await super().transcribe(job)


class FakeTurns:
    """A turn model that answers `probability`, or raises while `fail` is set."""

    def __init__(self, probability: float) -> None:
        self.probability = probability
        self.fail = False
        self.heard: list[int] = []  # bytes of each utterance it judged

    async def complete(self, pcm: bytes) -> float:
        self.heard.append(len(pcm))
        if self.fail:
            raise Broken("turn model down")
        return self.probability


SEMANTIC = Endpointing(semantic=True, incomplete_ms=1000, early_ms=192)


def open_stream(
    world: FakeWorld,
    *,
    transcriber: FakeTranscriber | None = None,
    clock: Clock | None = None,
    policy: Endpointing | None = None,
    partial_ms: int = 500,
    notices: list[SpeechStarted | SpeechStopped] | None = None,
    manual: bool = False,
    turns: FakeTurns | None = None,
) -> tuple[UtteranceStream, Heard]:
    heard: Heard = []

    async def emit(item: StreamEvent) -> None:
        if isinstance(item, SpeechStarted | SpeechStopped):
            if notices is not None:
                notices.append(item)
        elif isinstance(item, Partial | Final | Failed):  # eager ends are not asked for here
            heard.append(item)

    stream = UtteranceStream(
        transcriber=transcriber or world.transcriber,
        transcribe=world.container.transcribe,
        vad=FakeVadSession(),
        emit=emit,
        stream_id="s1",
        language=None,
        partial_ms=partial_ms,
        policy=policy or Endpointing(early_ms=192),  # the figures below count 6 windows
        clock=clock or world.clock,
        manual=manual,
        turns=turns,
    )
    return stream, heard


async def settle() -> None:
    """Let the stream's tasks (drafts, early finals, the finisher) run."""
    for _ in range(20):
        await asyncio.sleep(0)


async def feed(
    stream: UtteranceStream, pcm: bytes, frame: int | None = None, clock: StillClock | None = None
) -> None:
    """`pcm` in frames of `frame` bytes (all at once by default), the tasks running between;
    with a `clock`, each frame arrives in real time."""
    step = frame or len(pcm)
    for i in range(0, len(pcm), step):
        if clock is not None:
            clock.t += len(pcm[i : i + step]) / (BYTES_PER_MS * 1000)
        await stream.feed(pcm[i : i + step])
        await settle()


def finals(heard: Heard) -> list[Final]:
    return [item for item in heard if isinstance(item, Final)]


def partials(heard: Heard) -> list[Partial]:
    return [item for item in heard if isinstance(item, Partial)]
