"""OpenAI's shapes: its error type, and transcripts in its response formats."""

from __future__ import annotations

from typing import Any

from litestar import Response

from application.transcribe_audio import TranscriptionResult
from domain.errors import VoicePipeError
from domain.subtitles import to_srt, to_vtt

TRANSCRIPT_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
LANGUAGE_NAMES = {
    "en": "english", "de": "german", "es": "spanish", "fr": "french", "it": "italian",
    "pt": "portuguese", "nl": "dutch", "ru": "russian", "zh": "chinese", "ja": "japanese",
}  # fmt: skip


class OpenAIError(VoicePipeError):
    """An error worded for an OpenAI field (`param`), with OpenAI's code for it."""

    def __init__(self, message: str, *, param: str | None, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.param = param
        self.code = code
        self.status = status


def transcript_response(
    result: TranscriptionResult, response_format: str, task: str, words: bool
) -> Response[Any]:
    transcript = result.transcript
    if response_format == "text":
        return Response(transcript.text + "\n", media_type="text/plain")
    if response_format == "srt":
        return Response(to_srt(transcript.segments), media_type="text/plain")
    if response_format == "vtt":
        return Response(to_vtt(transcript.segments), media_type="text/vtt")
    if response_format == "json":
        return Response({"text": transcript.text})
    timed = [{"word": w.word, "start": w.start, "end": w.end} for w in transcript.words]
    return Response(
        {
            "task": task,
            "language": LANGUAGE_NAMES.get(transcript.language, transcript.language),
            "duration": transcript.duration,
            "text": transcript.text,
            "segments": [
                {
                    "id": i,
                    "seek": 0,
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "tokens": [],
                    "temperature": 0.0,
                    "avg_logprob": s.avg_logprob,
                    "compression_ratio": 1.0,
                    "no_speech_prob": s.no_speech_prob,
                }
                for i, s in enumerate(transcript.segments)
            ],
            **({"words": timed} if words else {}),
        }
    )
