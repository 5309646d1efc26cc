"""Small hand-written fakes for the ports; they record what happened."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from application.ports import ProcessedAudio, TranscriptionJob
from domain.errors import InvalidAudio
from domain.speech import AudioClip, AudioFormat, ProcessingSettings, Segment, Sentiment, Transcript


class Broken(RuntimeError):
    """What a failing fake raises: an unexpected dependency failure."""


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def now(self) -> float:
        return 1_700_000_000.0 + self.t

    def monotonic(self) -> float:
        self.t += 0.001  # every reading moves time on, so latencies are positive
        return self.t


class FakeSynthesizer:
    def __init__(self, provider: str = "fake", voices: Sequence[str] = ("alice", "bob")) -> None:
        self.provider = provider
        self._voices = list(voices)
        self.default_voice = self._voices[0]
        self.spoken: list[tuple[str, str]] = []
        self.fail = False

    def voices(self) -> Sequence[str]:
        return self._voices

    async def synthesize(self, text: str, voice: str, speed: float = 1.0) -> AudioClip:
        if self.fail:
            raise Broken("synthesizer down")
        self.spoken.append((text, voice))
        return AudioClip(pcm=b"\x01\x00" * 1600, sample_rate=16_000)


class FakeProcessor:
    def __init__(self) -> None:
        self.fail = False

    async def process(self, clip: AudioClip, settings: ProcessingSettings) -> ProcessedAudio:
        if self.fail:
            raise Broken("processor down")
        return ProcessedAudio(clip=clip, gain_db=3.0, trimmed_ms=10.0)


class FakeCodec:
    """Decodes only bytes starting with b"AUDIO"; encodes to a tagged blob."""

    def __init__(self) -> None:
        self.fail_encode = False
        self.fail_decode = False

    async def decode(self, data: bytes, sample_rate: int) -> AudioClip:
        if self.fail_decode:
            raise Broken("codec down")
        if not data.startswith(b"AUDIO"):
            raise InvalidAudio("not audio")
        return AudioClip(pcm=data[5:], sample_rate=sample_rate)

    async def encode(self, clip: AudioClip, audio_format: AudioFormat) -> bytes:
        if self.fail_encode:
            raise Broken("codec down")
        return audio_format.value.encode() + b":" + clip.pcm


class FakeTranscriber:
    model_name = "fake-model"

    def __init__(self, text: str = "hello world") -> None:
        self.text = text
        self.fail = False
        self.calls: list[tuple[float, bool]] = []  # (clip ms, a draft?)
        self.jobs: list[TranscriptionJob] = []

    async def transcribe(self, job: TranscriptionJob, progress: Any = None) -> Transcript:
        self.calls.append((job.clip.duration_ms, job.kind == "draft"))
        self.jobs.append(job)
        if self.fail:
            raise Broken("model down")
        return Transcript(
            text=self.text,
            language=job.language or "en",
            language_probability=0.99,
            duration=job.clip.duration_ms / 1000,
            segments=(Segment(0.0, 1.0, self.text, -0.2, 0.01),),
        )


class FakeSentiment:
    def __init__(self) -> None:
        self.fail = False

    async def analyse(self, text: str) -> Sentiment:
        if self.fail:
            raise Broken("sentiment down")
        label = "positive" if "good" in text else "neutral"
        return Sentiment(0.5 if label == "positive" else 0.0, 0.5, label, "joy", ("good",))


class FailingCache:
    async def get(self, key: str) -> bytes | None:
        raise Broken("cache down")

    async def put(self, key: str, value: bytes) -> None:
        raise Broken("cache down")


class FakeVadSession:
    """Speech wherever a 32 ms window's first sample is non-zero; a first sample of 2 is a
    faint sound (0.2: below the end threshold, above the quiet one), 3 an unsure one (0.5)."""

    def __init__(self) -> None:
        self.rest = b""

    def probabilities(self, pcm: bytes) -> list[float]:
        data = self.rest + pcm
        whole = len(data) - len(data) % 1024
        self.rest = data[whole:]
        heard = {b"\x00\x00": 0.0, b"\x02\x00": 0.2, b"\x03\x00": 0.5}
        return [heard.get(data[i : i + 2], 1.0) for i in range(0, whole, 1024)]


class FakeVoiceActivity:
    def session(self) -> FakeVadSession:
        return FakeVadSession()


class FakeAudioStream:
    """PCM at any rate to 16 kHz by picking samples; a "container" is 16 kHz PCM inside."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.odd = b""
        self.closed = False
        self.finished = False

    async def feed(self, data: bytes) -> bytes:
        data, self.odd = self.odd + data, b""
        if len(data) % 2:
            data, self.odd = data[:-1], data[-1:]
        samples = len(data) // 2
        count = samples * 16_000 // self.sample_rate
        step = self.sample_rate / 16_000
        return b"".join(data[2 * int(i * step) : 2 * int(i * step) + 2] for i in range(count))

    async def finish(self) -> bytes:
        self.finished = True
        return b""

    def close(self) -> None:
        self.closed = True


class FakeConverter:
    def __init__(self) -> None:
        self.streams: list[FakeAudioStream] = []

    def open_stream(self, encoding: str, sample_rate: int) -> FakeAudioStream:
        stream = FakeAudioStream(sample_rate if encoding == "pcm_s16le" else 16_000)
        self.streams.append(stream)
        return stream

    def resample(self, pcm: bytes, from_rate: int, to_rate: int) -> bytes:
        return pcm

    def open_output(self, encoding: str, from_rate: int, to_rate: int) -> FakeOutput:
        return FakeOutput()


class FakeOutput:
    """Passes PCM through: the unit tests count bytes at the voice's rate."""

    def convert(self, pcm: bytes) -> bytes:
        return pcm

    def flush(self) -> bytes:
        return b""


class StillClock(FakeClock):
    """A clock that moves only when told: `t += seconds`."""

    def monotonic(self) -> float:
        return self.t
