"""The WebSocket's utterance stream: audio frames in, partial and final transcripts out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from application.transcribe_stream import Failed, Final, Partial, UtteranceStream
from domain.errors import AudioTooLarge, InvalidAudio, InvalidRequest, VoicePipeError
from domain.utterances import Endpointing
from entrypoints.wire import SttStart

if TYPE_CHECKING:
    from entrypoints.ws_api import VoiceConnection

RATE = 16_000
ENCODINGS = ("pcm_s16le", "webm", "ogg")
MAX_FRAME_BYTES = 256 * 1024  # 20 ms frames are ~640 bytes; this is seconds of audio
DECODE_EVERY = 4 * 1024  # compressed bytes between decodes of the growing container


class FrameTooLarge(VoicePipeError):
    code = "frame_too_large"
    status = 413


class Listening:
    """Turns the client's frames into 16 kHz PCM for an UtteranceStream and sends its results."""

    def __init__(self, connection: VoiceConnection, message: SttStart, stream_id: str) -> None:
        self.connection = connection
        self.stream_id = stream_id
        self.encoding = message.encoding
        self.rate = message.sample_rate
        container = connection.container
        settings = container.settings
        self.utterances = UtteranceStream(
            transcriber=container.components["transcriber"],
            transcribe=container.transcribe,
            vad=container.voice_activity.session(),
            emit=self._emit,
            stream_id=stream_id,
            language=message.language,
            partial_ms=settings.stt_partial_ms,
            policy=Endpointing(endpoint_ms=settings.stt_endpoint_ms),
        )
        self._compressed = bytearray()
        self._decoded = 0  # bytes of 16 kHz PCM already fed from the compressed stream
        self._undecoded = 0
        self._carry = np.zeros(0, dtype=np.float32)  # resampler input not used yet
        self._phase = 0.0
        self._unpaid = 0.0  # seconds of audio fed beyond what the key was charged for

    @classmethod
    def open(cls, connection: VoiceConnection, message: SttStart, request_id: str) -> Listening:
        if message.encoding not in ENCODINGS:
            raise InvalidRequest(f"encoding must be one of: {', '.join(ENCODINGS)}")
        if message.encoding == "pcm_s16le" and not 8_000 <= message.sample_rate <= 48_000:
            raise InvalidRequest("sample_rate must be between 8000 and 48000")
        listening = cls(connection, message, message.id or request_id)
        return listening

    async def _feed(self, pcm: bytes) -> None:
        """Charge the key's STT seconds (a second at a time, ahead), then listen."""
        self._unpaid += len(pcm) / 32_000
        if self._unpaid > 0:
            await self.connection.container.access.take_audio(self.connection.principal, 1.0)
            self._unpaid -= 1.0
        await self.utterances.feed(pcm)

    async def feed(self, data: bytes) -> None:
        if len(data) > MAX_FRAME_BYTES:
            raise FrameTooLarge(f"audio frames are limited to {MAX_FRAME_BYTES} bytes")
        if self.encoding == "pcm_s16le":
            await self._feed(self._to_16k(data))
            return
        if len(self._compressed) + len(data) > self.connection.container.settings.max_audio_bytes:
            raise AudioTooLarge(
                "the compressed stream is over MAX_AUDIO_BYTES; stop and restart it"
            )
        self._compressed += data
        self._undecoded += len(data)
        if self._undecoded >= DECODE_EVERY:
            await self._decode_compressed()

    async def end_utterance(self) -> None:
        if self.encoding != "pcm_s16le":
            await self._decode_compressed()
        await self.utterances.end_utterance()

    async def stop(self, finish: bool) -> None:
        if finish and self.encoding != "pcm_s16le":
            await self._decode_compressed()
        await self.utterances.close(finish)
        if finish:
            await self.connection.send_json({"type": "stt_stopped", "id": self.stream_id})

    async def _decode_compressed(self) -> None:
        """Decode the whole container so far (browsers send webm in arbitrary slices)."""
        self._undecoded = 0
        try:
            clip = await self.connection.container.transcribe.codec.decode(
                bytes(self._compressed), RATE
            )
        except InvalidAudio:
            return  # not enough of the container yet
        fresh = clip.pcm[self._decoded :]
        self._decoded = len(clip.pcm)
        if fresh:
            await self._feed(fresh)

    def _to_16k(self, data: bytes) -> bytes:
        if self.rate == RATE:
            return data[: len(data) - len(data) % 2]
        # Linear interpolation carried across frames: enough for speech recognition.
        samples = np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2")
        audio = np.concatenate([self._carry, samples.astype(np.float32)])
        step = self.rate / RATE
        positions = np.arange(self._phase, len(audio) - 1, step)
        out = np.interp(positions, np.arange(len(audio)), audio)
        next_position = positions[-1] + step if len(positions) else self._phase
        keep = int(next_position)
        self._carry = audio[keep:]
        self._phase = next_position - keep
        return bytes(np.clip(out, -32768, 32767).astype("<i2").tobytes())

    async def _emit(self, item: Partial | Final | Failed) -> None:
        if isinstance(item, Failed):
            await self.connection.send_json(
                {
                    "type": "error",
                    "id": self.stream_id,
                    "utterance": item.utterance,
                    "code": item.code,
                    "message": item.message,
                }
            )
            return
        if isinstance(item, Partial):
            await self.connection.send_json(
                {"type": "partial", "id": self.stream_id, **msgspec.structs.asdict(item)}
            )
            return
        transcript = item.result.transcript
        message: dict[str, Any] = {
            "type": "final",
            "id": self.stream_id,
            "utterance": item.utterance,
            "start": item.start,
            "end": item.end,
            "text": transcript.text,
            "language": transcript.language,
            "language_probability": transcript.language_probability,
            "segments": transcript.segments,
            "sentiment": item.result.sentiment,
            "latency_ms": item.result.latency_ms,
            "end_of_speech_ms": item.end_of_speech_lag_ms,
        }
        await self.connection.send_json(message)
