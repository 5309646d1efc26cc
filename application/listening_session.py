"""Use case: a listening session. Audio in at any rate or container, transcripts out.

Every transport that listens (the v1 WebSocket, and the realtime protocols after it) opens one
of these and renders its events (application/stream_events.py) in its own wire format.
"""

from __future__ import annotations

import msgspec

from application.access import Access, Principal
from application.allowance import Allowance
from application.noise_reduction import noise_mode, open_filter
from application.ports import (
    AudioConverter,
    AudioStream,
    Clock,
    Denoiser,
    NoiseFilter,
    NoiseReduction,
    Transcriber,
    TurnDetector,
    VoiceActivityDetector,
)
from application.transcribe_audio import TranscribeAudio
from application.transcribe_stream import Emit, UtteranceStream
from domain.errors import AudioTooLarge, InvalidRequest, VoicePipeError
from domain.speech import SampleRate
from domain.token_bucket import TokenBucket
from domain.utterances import Endpointing

RATE = 16_000
BYTES_PER_SECOND = RATE * 2
ENCODINGS = ("pcm_s16le", "pcmu", "pcma", "webm", "ogg")
RAW = ("pcm_s16le", "pcmu", "pcma")  # sample by sample: no container to bound


class FrameTooLarge(VoicePipeError):
    code = "frame_too_large"
    status = 413


class AudioTooFast(VoicePipeError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.retry_after = 1


class ListeningLimits(msgspec.Struct, frozen=True):
    """Work one stream may cause, bounded before it is done."""

    max_frame_bytes: int = 256 * 1024  # 20 ms frames are ~640 bytes; this is seconds of audio
    max_container_bytes: int = 25 * 1024 * 1024  # compressed bytes in one stream
    realtime_factor: float = 10.0  # audio may arrive this much faster than real time...
    burst_seconds: float = 60.0  # ...after a first burst of this many seconds
    partial_ms: int = 500
    endpoint_ms: int = 500
    semantic: bool = False  # the turn model ends finished sentences at the pause
    incomplete_ms: int = 700  # ...and unfinished ones after this much silence
    early_ms: int = 128  # silence before the final starts, speculatively (domain/utterances)


class ListeningSession:
    """One stream of audio from one client.

    Rules:
    - Frames over `max_frame_bytes`, and containers over `max_container_bytes`, are refused.
    - Audio is converted to 16 kHz PCM as it arrives; a container is decoded incrementally,
      each byte once.
    - Audio is limited in seconds, not bytes: at most `realtime_factor` times real time after
      a burst, whatever the rate or encoding. Over it, the frame is refused (`rate_limited`).
    - Every second the model hears is charged to the key (reserved ahead, whole seconds);
      `stop` settles the charge to the exact seconds received.
    - With a noise filter, what the model hears is the filtered audio (charged as received).
    """

    def __init__(
        self,
        *,
        stream_id: str,
        audio: AudioStream,
        utterances: UtteranceStream,
        allowance: Allowance,
        clock: Clock,
        limits: ListeningLimits,
        compressed: bool,
        noise: NoiseFilter | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.noise = noise
        self.audio = audio
        self.utterances = utterances
        self.allowance = allowance
        self.clock = clock
        self.limits = limits
        self.compressed = compressed
        self._received = 0  # bytes of the container so far
        self._pace = TokenBucket(limits.realtime_factor, limits.burst_seconds, clock.monotonic())
        self.stopped = False

    @property
    def heard_seconds(self) -> float:
        return self.allowance.used

    async def feed(self, data: bytes) -> None:
        if len(data) > self.limits.max_frame_bytes:
            raise FrameTooLarge(f"audio frames are limited to {self.limits.max_frame_bytes} bytes")
        if self.compressed:
            if self._received + len(data) > self.limits.max_container_bytes:
                raise AudioTooLarge(
                    "the compressed stream is over MAX_AUDIO_BYTES; stop and restart it"
                )
            self._received += len(data)
        await self._hear(await self.audio.feed(data))

    async def end_utterance(self) -> bool:
        """The utterance in progress is complete (reason "client"); False if there was none."""
        await self._hear(await self.audio.feed(b""))
        return await self.utterances.end_utterance()

    async def finalize(self) -> bool:
        """Deepgram's Finalize: the utterance in progress is complete (reason "client"); with
        none in progress, the last final still to come says reason "client" instead. False
        only when there is neither."""
        await self._hear(await self.audio.feed(b""))
        return await self.utterances.finalize()

    def clear(self) -> None:
        """Drop the utterance in progress (its audio stays charged: the model heard it)."""
        self.utterances.clear()

    async def stop(self, *, finish: bool) -> None:
        """`finish`: the rest of the audio is transcribed; else it is dropped (client left)."""
        if self.stopped:
            return
        self.stopped = True
        try:
            if finish:
                await self._hear(await self.audio.finish())
                if self.noise is not None:  # its last ~30 ms, already charged
                    await self.utterances.feed(await self.noise.flush())
            await self.utterances.close(finish)
        finally:
            self.audio.close()
            if self.noise is not None:
                self.noise.close()
            await self.allowance.settle()

    async def _hear(self, pcm: bytes) -> None:
        if not pcm:
            return
        seconds = len(pcm) / BYTES_PER_SECOND
        if not self._pace.take(seconds, self.clock.monotonic()):
            factor = self.limits.realtime_factor
            raise AudioTooFast(f"audio is arriving faster than {factor:g}x real time; slow down")
        await self.allowance.use(seconds)
        if self.noise is not None:
            pcm = await self.noise.process(pcm)
        await self.utterances.feed(pcm)


class StartListening:
    """Opens listening sessions with the shared model, detector, converter and access."""

    def __init__(
        self,
        *,
        transcriber: Transcriber,
        transcribe: TranscribeAudio,
        voice_activity: VoiceActivityDetector,
        converter: AudioConverter,
        access: Access,
        clock: Clock,
        limits: ListeningLimits,
        turns: TurnDetector | None = None,
        denoiser: Denoiser | None = None,
        noise_reduction: NoiseReduction = "off",
    ) -> None:
        self.access = access
        self.denoiser = denoiser
        self.noise_reduction = noise_reduction  # the service's default (NOISE_REDUCTION)
        self.transcriber = transcriber
        self.turns = turns
        self.transcribe = transcribe
        self.voice_activity = voice_activity
        self.converter = converter
        self.clock = clock
        self.limits = limits

    def default_policy(self) -> Endpointing:
        return Endpointing(
            endpoint_ms=self.limits.endpoint_ms,
            semantic=self.limits.semantic and self.turns is not None,
            incomplete_ms=self.limits.incomplete_ms,
            early_ms=self.limits.early_ms,
        )

    def open(
        self,
        *,
        stream_id: str,
        encoding: str,
        sample_rate: int,
        language: str | None,
        principal: Principal,
        emit: Emit,
        transport: str = "ws-stream",
        policy: Endpointing | None = None,
        manual: bool = False,
        prompt: str | None = None,
        words: bool = False,
        noise_reduction: str | None = None,
        model: str | None = None,
    ) -> ListeningSession:
        """`policy` overrides the endpointing (bounded by the transport); `manual`: the client
        commits each utterance; `noise_reduction`: "off", "near_field" or "far_field" for this
        session, None for the service's default; `model`: the speech model of every draft and
        final (application/model_choice.py), None for the default."""
        if encoding not in ENCODINGS:
            raise InvalidRequest(f"encoding must be one of: {', '.join(ENCODINGS)}")
        if encoding == "pcm_s16le":
            SampleRate.parse(sample_rate)
        noise = noise_mode(self.denoiser, self.noise_reduction, noise_reduction)
        utterances = UtteranceStream(
            transcriber=self.transcriber,
            transcribe=self.transcribe,
            vad=self.voice_activity.session(),
            emit=emit,
            stream_id=stream_id,
            language=language,
            partial_ms=self.limits.partial_ms,
            policy=policy or self.default_policy(),
            transport=transport,
            clock=self.clock,
            manual=manual,
            prompt=prompt,
            words=words,
            turns=self.turns,
            model=model,
        )
        return ListeningSession(
            stream_id=stream_id,
            audio=self.converter.open_stream(encoding, sample_rate),
            utterances=utterances,
            allowance=self.access.audio_allowance(principal),
            clock=self.clock,
            limits=self.limits,
            compressed=encoding not in RAW,
            noise=open_filter(self.denoiser, noise),
        )
