"""Use case at the edge of every transport that transcribes one recording: the key's audio
quota and content retention, applied once whatever the protocol."""

from __future__ import annotations

from application.access import Access, Principal
from application.ports import Progress
from application.retention import Retention
from application.transcribe_audio import TranscribeAudio, TranscriptionResult
from domain.speech import TranscriptionHints


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
