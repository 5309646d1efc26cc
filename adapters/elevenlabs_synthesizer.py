"""Cloud TTS with the official ElevenLabs SDK, over its streaming HTTP endpoint.

Retries (tenacity) live here: exponential backoff with jitter, bounded attempts and total
time, only for transient failures; a 429's Retry-After is honoured. Every failure leaves as a
ProviderError with a stable code, so the use case can fall back to the next provider.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

import httpx
from elevenlabs import AsyncElevenLabs, VoiceSettings
from elevenlabs.core.api_error import ApiError
from elevenlabs.text_to_speech.client import OMIT
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from application.ports import AudioCodec
from domain.errors import InvalidAudio, ProviderError
from domain.speech import AudioClip, AudioFormat

log = logging.getLogger(__name__)

OUTPUT_RATE = 22_050  # what Piper speaks: every provider's audio leaves at one rate


def _is_transient(error: BaseException) -> bool:
    return isinstance(error, ProviderError) and error.transient


class _Backoff:
    """Exponential with jitter, or the server's Retry-After when it sent one."""

    def __init__(self) -> None:
        self._jitter = wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.2)

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, ProviderError) and error.retry_after is not None:
            return error.retry_after
        return float(self._jitter(state))


class ElevenLabsSynthesizer:
    """Speech synthesizer port over ElevenLabs; voices are named, each mapped to a voice id."""

    provider = "elevenlabs"

    def __init__(
        self,
        *,
        api_key: str,
        voices: Mapping[str, str],
        default_voice: str,
        model_id: str,
        output_format: str,
        codec: AudioCodec,
        base_url: str | None = None,
        timeout: float = 10.0,
        attempts: int = 3,
        max_seconds: float = 20.0,
    ) -> None:
        self._client = AsyncElevenLabs(api_key=api_key, base_url=base_url, timeout=timeout)
        self._voices = dict(voices)
        self.default_voice = default_voice
        self.model_id = model_id
        self.output_format = output_format
        self.codec = codec
        self.timeout = timeout
        self.attempts = attempts
        self.max_seconds = max_seconds
        self.problem: str | None = None  # what /health should say about this provider

    def voices(self) -> Sequence[str]:
        return list(self._voices)

    async def check(self) -> None:
        """At start-up: is the key accepted and the default voice there? Warns, never fails."""
        try:
            await self._client.voices.get(
                self._voices[self.default_voice],
                request_options={"timeout_in_seconds": min(self.timeout, 5.0), "max_retries": 0},
            )
        except Exception as error:
            self.problem = _describe(_provider_error(error))
            log.warning("elevenlabs start-up check failed: %s", self.problem)
        else:
            self.problem = None

    async def synthesize(self, text: str, voice: str, speed: float = 1.0) -> AudioClip:
        try:
            async with asyncio.timeout(self.max_seconds):
                data = await self._fetch_with_retries(text, self._voices[voice], speed)
        except TimeoutError:
            raise ProviderError(
                "provider_timeout", "elevenlabs took too long", transient=True
            ) from None
        clip = await self._to_clip(data)
        self.problem = None
        return clip

    async def _fetch_with_retries(self, text: str, voice_id: str, speed: float) -> bytes:
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_transient),
            stop=stop_after_attempt(self.attempts) | stop_after_delay(self.max_seconds),
            wait=_Backoff(),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                try:
                    return await self._fetch(text, voice_id, speed)
                except ProviderError as error:
                    if error.code in ("provider_unauthorized", "provider_voice_not_found"):
                        self.problem = _describe(error)
                    raise
        raise AssertionError("unreachable: tenacity reraises")

    async def _fetch(self, text: str, voice_id: str, speed: float) -> bytes:
        chunks: list[bytes] = []
        try:
            stream = self._client.text_to_speech.stream(
                voice_id,
                text=text,
                model_id=self.model_id,
                output_format=self.output_format,
                # ElevenLabs takes 0.7–1.2; outside that, the closest it can do.
                voice_settings=VoiceSettings(speed=min(1.2, max(0.7, speed)))
                if speed != 1.0
                else OMIT,
                request_options={"timeout_in_seconds": self.timeout, "max_retries": 0},
            )
            async for chunk in stream:
                chunks.append(chunk)
        except Exception as error:
            raise _provider_error(error) from error
        return b"".join(chunks)

    async def _to_clip(self, data: bytes) -> AudioClip:
        if not data:
            raise ProviderError(
                "provider_bad_response", "elevenlabs sent no audio", transient=False
            )
        if self.output_format.startswith("pcm_"):
            rate = int(self.output_format.split("_")[1])
            clip = AudioClip(pcm=data[: len(data) - len(data) % 2], sample_rate=rate)
            if rate == OUTPUT_RATE:
                return clip
            data = await self.codec.encode(clip, AudioFormat.WAV)
        try:
            return await self.codec.decode(data, OUTPUT_RATE)
        except InvalidAudio:
            raise ProviderError(
                "provider_bad_response",
                "elevenlabs sent audio that does not decode",
                transient=False,
            ) from None


def _provider_error(error: BaseException) -> ProviderError:
    if isinstance(error, ProviderError):
        return error
    if isinstance(error, ApiError):
        status = error.status_code or 0
        if status == 401:
            return ProviderError(
                "provider_unauthorized", "ElevenLabs rejected the API key", transient=False
            )
        if status == 404:
            return ProviderError(
                "provider_voice_not_found", "ElevenLabs does not know this voice", transient=False
            )
        if status == 429:
            return ProviderError(
                "provider_rate_limited",
                "ElevenLabs is rate limiting",
                transient=True,
                retry_after=_retry_after(error.headers or {}),
            )
        if status >= 500:
            return ProviderError("provider_error", f"ElevenLabs answered {status}", transient=True)
        return ProviderError("provider_rejected", f"ElevenLabs answered {status}", transient=False)
    if isinstance(error, httpx.TimeoutException):
        return ProviderError(
            "provider_timeout", "ElevenLabs did not answer in time", transient=True
        )
    if isinstance(error, (httpx.TransportError, OSError)):
        # Refused, reset, or a stream cut off half-way: all worth another attempt.
        return ProviderError(
            "provider_unavailable", "ElevenLabs could not be reached", transient=True
        )
    return ProviderError(
        "provider_bad_response", "ElevenLabs sent something unexpected", transient=False
    )


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = {k.lower(): v for k, v in headers.items()}.get("retry-after")
    try:
        return min(max(float(value), 0.0), 30.0) if value is not None else None
    except ValueError:
        return None  # an HTTP date: use our own backoff


def _describe(error: ProviderError) -> str:
    return f"{error.code}: {error.message}"
