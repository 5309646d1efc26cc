"""Use case at the edge of every transport that transcribes one recording: the key's audio
quota and content retention, applied once whatever the protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from application.access import Access, Principal
from application.ports import Progress
from application.retention import Retention
from application.transcribe_audio import TranscribeAudio, TranscriptionResult
from domain.errors import AudioTooLarge, InvalidAudio, InvalidRequest
from domain.speech import SampleRate, Segment, TranscriptionHints
from domain.wav import RAW_ENCODINGS, WAVE_FORMATS, WAVE_HEADER_BYTES, wave_header

RAW_MAX_CHANNELS = 8


class Transcribing:
    """Speech in for a key: one recording at a time (streams are listening sessions)."""

    def __init__(
        self, *, transcribe: TranscribeAudio, access: Access, retention: Retention
    ) -> None:
        self.transcribe = transcribe
        self.access = access
        self.retention = retention

    async def transcribe_once(
        self,
        principal: Principal,
        audio: bytes,
        language: str | None,
        *,
        pipeline_id: str,
        transport: str,
        model: str | None = None,
        task: str = "transcribe",
        hints: TranscriptionHints | None = None,
        progress: Progress | None = None,
    ) -> TranscriptionResult:
        """Refused at once when the day's seconds are spent; else reserved once decoded."""
        await self.access.check_audio(principal)
        result = await self.transcribe.execute(
            audio,
            language,
            pipeline_id=pipeline_id,
            transport=transport,
            model=model,
            task=task,
            hints=hints,
            progress=progress,
            allowance=self.access.audio_allowance(principal),
        )
        self.retention.keep("stt", result.transcript.text)
        return result

    async def segments(
        self,
        principal: Principal,
        audio: bytes,
        language: str | None,
        *,
        pipeline_id: str,
        transport: str,
        model: str | None = None,
        task: str = "transcribe",
        hints: TranscriptionHints | None = None,
    ) -> AsyncIterator[Segment | TranscriptionResult]:
        """Each segment as the model transcribes it, then the whole result; a caller that
        stops listening cancels the work."""
        loop = asyncio.get_running_loop()
        found: asyncio.Queue[Segment | None] = asyncio.Queue()

        def progress(segment: Segment) -> None:  # on the model's thread
            loop.call_soon_threadsafe(found.put_nowait, segment)

        work = loop.create_task(
            self.transcribe_once(
                principal, audio, language, pipeline_id=pipeline_id, transport=transport,
                model=model, task=task, hints=hints, progress=progress,
            )
        )  # fmt: skip
        work.add_done_callback(lambda _: found.put_nowait(None))
        try:
            while (segment := await found.get()) is not None:
                yield segment
            yield await work
        finally:
            work.cancel()

    async def transcribe_raw(
        self,
        principal: Principal,
        audio: bytes,
        language: str | None,
        *,
        encoding: str,
        sample_rate: int,
        channels: int = 1,
        pipeline_id: str,
        transport: str,
        model: str | None = None,
        hints: TranscriptionHints | None = None,
    ) -> TranscriptionResult:
        """Headerless samples (`pcm_s16le`, or G.711 `pcmu` / `pcma`) at `sample_rate`, with
        `channels` interleaved (mixed down): the same recording path as `transcribe_once`,
        with the same bound in bytes (on the samples sent), seconds, charge and events."""
        if encoding not in WAVE_FORMATS:
            raise InvalidRequest(f"raw audio is one of: {', '.join(RAW_ENCODINGS)}")
        SampleRate.parse(sample_rate)
        if not 1 <= channels <= RAW_MAX_CHANNELS:
            raise InvalidRequest(f"channels must be between 1 and {RAW_MAX_CHANNELS}")
        limit = self.transcribe.max_audio_bytes
        if len(audio) > limit - WAVE_HEADER_BYTES:
            raise AudioTooLarge(
                f"audio has {len(audio)} bytes; the limit is {limit - WAVE_HEADER_BYTES} "
                "for raw audio"
            )
        block = WAVE_FORMATS[encoding][1] * channels
        whole = len(audio) - len(audio) % block  # a torn last sample is not audio
        if not whole:
            raise InvalidAudio("audio is empty" if not audio else "audio contains no samples")
        header = wave_header(encoding, sample_rate, channels, whole)
        return await self.transcribe_once(
            principal,
            header + audio[:whole],
            language,
            pipeline_id=pipeline_id,
            transport=transport,
            model=model,
            hints=hints,
        )
