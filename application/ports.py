"""Ports: what the use cases need from the outside world, as typing.Protocol.

Every port that can block (models, codecs, network) is async; adapters run their
blocking work off the event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Literal, Protocol, TypeVar

import msgspec

from domain.conversation import ChatTurn
from domain.events import DomainEvent
from domain.speech import (
    AudioClip,
    AudioFormat,
    ProcessingSettings,
    Segment,
    Sentiment,
    Transcript,
    TranscriptionHints,
)
from domain.tools import Tool, ToolCallDelta, ToolChoice

Progress = Callable[[Segment], None]  # called with each segment as it is transcribed


class SpeechSynthesizer(Protocol):
    """Turns text into audio with one provider's voices."""

    @property
    def provider(self) -> str: ...

    @property
    def default_voice(self) -> str: ...

    def voices(self) -> Sequence[str]: ...

    async def synthesize(self, text: str, voice: str, speed: float = 1.0) -> AudioClip:
        """`speed` > 1 speaks faster (OpenAI's 0.25–4.0); providers get as close as they can."""
        ...


class TranscriptionJob(msgspec.Struct, frozen=True):
    """One clip for the model, and how to hear it.

    `kind`: a "recording" is a whole upload, on which the model runs its own voice activity
    pass; an "utterance" was already cut by a stream's voice activity detection, so the model
    skips that pass and uses its quicker streaming settings; a "draft" (a partial transcript)
    is quicker and less exact still, and is refused as Busy whenever anything else waits.
    `model`: a model other than the default. `task="translate"` translates to English.
    """

    clip: AudioClip
    language: str | None = None
    kind: Literal["recording", "utterance", "draft"] = "recording"
    model: str | None = None
    task: str = "transcribe"
    hints: TranscriptionHints | None = None


class Transcriber(Protocol):
    """Turns 16 kHz mono speech into a transcript.

    Model work waits in one bounded queue shared by every caller: when it is full, new work
    raises Busy at once. A draft is the first thing to give up (see TranscriptionJob).
    """

    @property
    def model_name(self) -> str: ...

    async def transcribe(
        self, job: TranscriptionJob, progress: Progress | None = None
    ) -> Transcript:
        """The job's transcript; `progress` is called (from a worker thread) with each segment."""
        ...


class VadSession(Protocol):
    def probabilities(self, pcm: bytes) -> list[float]:
        """Speech probability of each complete 32 ms window of 16 kHz s16le audio fed so far."""
        ...


class VoiceActivityDetector(Protocol):
    def session(self) -> VadSession:
        """A fresh detector state for one audio stream."""
        ...


NoiseReduction = Literal["off", "near_field", "far_field"]  # as the Realtime API names them
NOISE_REDUCTIONS: tuple[NoiseReduction, ...] = ("off", "near_field", "far_field")


class NoiseFilter(Protocol):
    """One stream's noise suppressor: 16 kHz mono s16le in, the same out, state carried over.

    Over a stream, what comes out lines up with what went in sample for sample; the last few
    tens of ms are held back until `flush`."""

    async def process(self, pcm: bytes) -> bytes: ...

    async def flush(self) -> bytes:
        """What is still held, at the end of the stream (then the filter is spent)."""
        ...

    def close(self) -> None: ...


class Denoiser(Protocol):
    def open(self, mode: NoiseReduction) -> NoiseFilter:
        """A fresh filter for one stream (`mode` is not "off")."""
        ...


class ProcessedAudio(msgspec.Struct, frozen=True):
    clip: AudioClip
    gain_db: float
    trimmed_ms: float


class AudioProcessor(Protocol):
    """Cleans up synthesized audio: silence trim, compression, loudness."""

    async def process(self, clip: AudioClip, settings: ProcessingSettings) -> ProcessedAudio: ...


class AudioCodec(Protocol):
    """Decodes any common container to PCM and encodes PCM to an output format."""

    async def decode(self, data: bytes, sample_rate: int) -> AudioClip: ...

    async def encode(self, clip: AudioClip, audio_format: AudioFormat) -> bytes: ...


class AudioStream(Protocol):
    """One client's streamed audio on its way to 16 kHz mono s16le PCM, converted as it arrives."""

    async def feed(self, data: bytes) -> bytes:
        """16 kHz PCM for what can be decoded so far (often empty for containers); raises
        domain.errors.InvalidAudio when the bytes cannot be this encoding."""
        ...

    async def finish(self) -> bytes:
        """The rest, once the client says the audio is complete (flushes decoder and resampler)."""
        ...

    def close(self) -> None:
        """Drop the stream (the client left): frees its resources, stops any work queued for it."""
        ...


class AudioOutput(Protocol):
    """One stream of speech on its way to a client's format, converted chunk by chunk."""

    def convert(self, pcm: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class AudioConverter(Protocol):
    """Audio conversion for streams and clips (resampling, incremental container decoding)."""

    def open_stream(self, encoding: str, sample_rate: int) -> AudioStream:
        """`pcm_s16le` at `sample_rate` Hz (8000–48000), G.711 `pcmu`/`pcma` (8 kHz), or a
        container: `ogg` or `webm`."""
        ...

    def open_output(self, encoding: str, from_rate: int, to_rate: int) -> AudioOutput:
        """Mono s16le at `from_rate` to `pcm_s16le` at `to_rate`, or G.711 (`pcmu`, `pcma`)
        at 8 kHz."""
        ...

    def resample(self, pcm: bytes, from_rate: int, to_rate: int) -> bytes:
        """Mono s16le PCM at another rate (whole clips, e.g. 16 kHz model audio to 24 kHz)."""
        ...


class LanguageModel(Protocol):
    """An OpenAI-compatible chat-completions server, answering in streamed text."""

    @property
    def model_name(self) -> str: ...

    def reply(
        self,
        turns: Sequence[ChatTurn],
        max_tokens: int | None,
        tools: Sequence[Tool] = (),
        tool_choice: ToolChoice = "auto",
    ) -> AsyncIterator[str | ToolCallDelta]:
        """The answer as it streams in: text, and pieces of tool calls when `tools` are
        offered; raises domain.errors.LanguageModelFailed."""
        ...


class SentimentAnalyzer(Protocol):
    async def analyse(self, text: str) -> Sentiment: ...


class AudioCache(Protocol):
    """Bytes by key; misses and failures both read as None to the caller's policy."""

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes) -> None: ...


class EventLog(Protocol):
    """Append-only log of domain events with opaque, increasing ids.

    `append` must not make a request wait on a remote store being down: adapters buffer
    (bounded) and count what they drop. `read` sees every event this process appended.
    """

    async def append(self, events: Sequence[DomainEvent]) -> None: ...

    async def read(self, after: str | None, count: int) -> list[tuple[str, DomainEvent]]: ...

    async def wait(self, after: str | None, seconds: float) -> None:
        """Return when an event after `after` exists, or after `seconds`."""
        ...


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch, for event timestamps."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, for measuring latency."""
        ...


class LimitStore(Protocol):
    """Counters behind rate limits, quotas and connection limits (shared when in Redis).

    `hit` is a moving window: it holds over every span of `window_seconds`, so no burst
    fits across a boundary. `take` and `add` count in fixed windows aligned to
    `window_seconds` since the epoch (quotas: a day is a UTC day).
    """

    async def hit(self, bucket: str, limit: int, window_seconds: float, now: float) -> float:
        """Count one event unless `limit` events fell in the last `window_seconds`: 0.0 when
        counted, else the seconds until the oldest of them leaves the window."""
        ...

    async def take(
        self, bucket: str, amount: float, limit: float, window_seconds: int, now: float
    ) -> float:
        """Charge `amount` unless that would pass `limit`: 0.0 when charged, else the seconds
        until the window resets (nothing charged)."""
        ...

    async def add(self, bucket: str, amount: float, window_seconds: int, now: float) -> float:
        """Charge unconditionally (the cost was only known afterwards); returns the total."""
        ...

    async def join(
        self, group: str, member: str, limit: int, ttl_seconds: float, now: float
    ) -> bool:
        """Add (or refresh) `member` unless `group` already has `limit` live members."""
        ...

    async def leave(self, group: str, member: str) -> None: ...

    async def count(self, bucket: str, window_seconds: float, now: float) -> int:
        """Events `hit` counted in `bucket` in the last `window_seconds` (counts nothing)."""
        ...

    async def total(self, bucket: str, window_seconds: int, now: float) -> float:
        """This fixed window's total of `take` and `add` in `bucket` (changes nothing)."""
        ...

    async def members(self, group: str, now: float) -> int:
        """Live (joined, not left, not expired) members of `group`."""
        ...

    async def first_use(self, name: str, ttl_seconds: float) -> bool:
        """True the first time `name` is seen within `ttl_seconds` (single-use tokens)."""
        ...


class TurnDetector(Protocol):
    """Semantic end of turn: the probability that the speaker has finished what they meant."""

    async def complete(self, pcm: bytes) -> float:
        """The utterance so far (16 kHz mono s16le) -> P(turn complete), 0..1."""
        ...


class BreakerStore(Protocol):
    """Circuit state shared by every instance: which providers' circuits are open, since when.

    An opening lasts the cool-down and then lapses by itself, so an instance that dies while
    holding a circuit open never keeps the provider out for good.
    """

    async def opened(self, providers: Sequence[str]) -> dict[str, float]:
        """The providers whose circuit is open, each with the wall time it opened at."""
        ...

    async def open(self, provider: str, opened_at: float, seconds: float) -> None:
        """Open (or re-open) `provider`'s circuit for everyone, for `seconds` from now; an
        opening older than the one held changes nothing."""
        ...

    async def close(self, provider: str) -> None: ...


class PublishedStats(msgspec.Struct, frozen=True):
    """The fleet's stats snapshot (the /stats dict) and the event log position it covers
    (None: the log was empty)."""

    position: str | None
    snapshot: dict[str, object]


class StatsBoard(Protocol):
    """Where the instances elect the one that folds the event log, and where it publishes.

    The lease lapses by itself unless renewed, so a leader that dies frees it. Positions are
    the event log's ids; `covers` orders them.
    """

    async def acquire(self, owner: str, seconds: float) -> bool:
        """Take the lease if nobody holds it."""
        ...

    async def renew(self, owner: str, seconds: float) -> bool:
        """Extend the lease if `owner` still holds it; False when it was lost."""
        ...

    async def release(self, owner: str) -> None: ...

    async def publish(self, owner: str, stats: PublishedStats) -> bool:
        """Store `stats` for everyone, only while `owner` holds the lease."""
        ...

    async def fetch(self) -> tuple[PublishedStats | None, bool]:
        """The published stats (None before any), and whether a leader holds the lease."""
        ...

    async def head(self) -> str | None:
        """The newest position in the log once this process's buffered events are written."""
        ...

    def covers(self, position: str, target: str) -> bool:
        """Whether a fold up to `position` includes the event at `target`."""
        ...


In = TypeVar("In", covariant=True)
Out = TypeVar("Out", contravariant=True)


class Channel(Protocol[In, Out]):
    """One long-lived connection's transport (a WebSocket, Wyoming's TCP): frames in and out.

    A frame over the protocol's bound is refused before it is read: `receive` raises a
    VoicePipeError and the connection cannot go on. A peer that is gone makes `send` raise
    ConnectionError.
    """

    async def receive(self) -> In | None:
        """The next frame; None once the peer has left."""
        ...

    async def send(self, frame: Out) -> None: ...

    async def close(self, code: int, reason: str) -> None:
        """Close (a WebSocket close code; a TCP stream just closes), never raising."""
        ...
