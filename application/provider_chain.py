"""The ordered TTS providers of a request, each behind its own circuit breaker."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import msgspec

from application.pipeline_run import PipelineRun
from application.ports import Clock, SpeechSynthesizer
from domain.circuit import CircuitBreaker, CircuitPolicy, CircuitState
from domain.errors import Busy, ProviderError, UnknownVoice
from domain.events import (
    CircuitClosed,
    CircuitHalfOpened,
    CircuitOpened,
    DomainEvent,
    ProviderFailed,
    SpeechSynthesized,
)
from domain.speech import AudioClip, Voice

log = logging.getLogger(__name__)

_TRANSITION_EVENTS: dict[CircuitState, type[DomainEvent]] = {
    CircuitState.OPEN: CircuitOpened,
    CircuitState.HALF_OPEN: CircuitHalfOpened,
    CircuitState.CLOSED: CircuitClosed,
}


class Candidate(msgspec.Struct, frozen=True):
    synthesizer: SpeechSynthesizer
    voice: Voice


class ProviderChain:
    """Voice mapping, fallback order and breaker bookkeeping for the synthesizers.

    A requested voice picks the first provider that offers it; the other providers follow in
    configured order, each with its own default voice. No voice: configured order, defaults.
    """

    def __init__(
        self,
        synthesizers: Sequence[SpeechSynthesizer],
        clock: Clock,
        policy: CircuitPolicy | None = None,
    ) -> None:
        if not synthesizers:
            raise ValueError("at least one synthesizer is needed")
        self.synthesizers = list(synthesizers)
        self.clock = clock
        self.breakers = {s.provider: CircuitBreaker(policy) for s in self.synthesizers}
        # Told of every state change this instance makes (SharedBreakers tells the fleet).
        self.on_change: list[Callable[[str, CircuitState], None]] = []

    def candidates(self, voice: str | None) -> list[Candidate]:
        order = list(self.synthesizers)
        if voice is not None:
            owner = next((s for s in order if voice in s.voices()), None)
            if owner is None:
                known = ", ".join(v for s in order for v in s.voices())
                raise UnknownVoice(f"unknown voice {voice!r}; available: {known}")
            order.remove(owner)
            order.insert(0, owner)
        return [Candidate(s, Voice(s.provider, _voice_of(s, voice))) for s in order]

    async def try_one(
        self, candidate: Candidate, text: str, run: PipelineRun, speed: float = 1.0
    ) -> AudioClip | None:
        """One provider's attempt (its adapter retries inside); None hands over to the next."""
        provider = candidate.voice.provider
        started = self.clock.monotonic()
        try:
            clip = await candidate.synthesizer.synthesize(text, candidate.voice.name, speed)
        except Busy:
            raise  # the whole service is at capacity: say so, do not count it against anyone
        except ProviderError as error:
            self.failed(provider, error.code, started, run)
            return None
        except Exception:
            log.exception("%s failed to synthesize", provider)
            self.failed(provider, "provider_error", started, run)
            return None
        self.succeeded(provider, run)
        run.record(
            SpeechSynthesized,
            provider=provider,
            voice=candidate.voice.name,
            audio_ms=round(clip.duration_ms, 3),
            latency_ms=run.since_ms(started),
        )
        return clip

    async def first_available(
        self, candidates: list[Candidate], text: str, run: PipelineRun, speed: float = 1.0
    ) -> tuple[Candidate, AudioClip] | None:
        """The first candidate whose breaker allows it and that speaks; None if none did."""
        for candidate in candidates:
            if not self.allow(candidate.voice.provider, run):
                continue
            clip = await self.try_one(candidate, text, run, speed)
            if clip is not None:
                return candidate, clip
        return None

    def allow(self, provider: str, run: PipelineRun) -> bool:
        allowed, change = self.breakers[provider].allow(self.clock.monotonic())
        self._record(provider, change, run)
        if not allowed:
            run.record(ProviderFailed, provider=provider, code="circuit_open", latency_ms=0.0)
        return allowed

    def succeeded(self, provider: str, run: PipelineRun) -> None:
        self._record(provider, self.breakers[provider].record_success(self.clock.monotonic()), run)

    def failed(self, provider: str, code: str, started: float, run: PipelineRun) -> None:
        run.record(ProviderFailed, provider=provider, code=code, latency_ms=run.since_ms(started))
        self._record(provider, self.breakers[provider].record_failure(self.clock.monotonic()), run)

    def states(self) -> dict[str, str]:
        return {provider: b.state.value for provider, b in self.breakers.items()}

    def adopt_open(self, provider: str, opened_at: float) -> bool:
        """Another instance opened `provider`'s circuit at `opened_at` (monotonic, here);
        True when that opened it here (the caller records the event)."""
        return self.breakers[provider].adopt_open(opened_at) is not None

    def _record(self, provider: str, change: CircuitState | None, run: PipelineRun) -> None:
        if change is not None:
            run.record(_TRANSITION_EVENTS[change], provider=provider)
            for listener in self.on_change:
                listener(provider, change)


def _voice_of(synthesizer: SpeechSynthesizer, requested: str | None) -> str:
    if requested is not None and requested in synthesizer.voices():
        return requested
    return synthesizer.default_voice
