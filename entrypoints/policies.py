"""The settings as the limits and policies the use cases take: one mapping each."""

from __future__ import annotations

from application.access import Access, KeyRing, Limits
from application.connections import ConnectionLimits
from application.conversation_session import ConversationLimits
from application.listening_session import ListeningLimits
from application.noise_reduction import parse_mode
from application.ports import Clock, LimitStore, NoiseReduction
from domain.circuit import CircuitPolicy
from entrypoints.settings import Settings


def access(settings: Settings, store: LimitStore, clock: Clock) -> Access:
    limits = Limits(
        requests_per_minute=settings.rate_limit_per_minute,
        tts_chars_per_day=settings.tts_chars_per_day,
        stt_seconds_per_day=settings.stt_seconds_per_day,
        connections_per_key=settings.connections_per_key,
        llm_chars_per_day=settings.llm_chars_per_day,
    )
    return Access(
        KeyRing(settings.api_keys),
        store,
        clock,
        limits=limits,
        token_ttl=settings.token_ttl_seconds,
        anonymous_limits=settings.anonymous_limits,
    )


def circuit(settings: Settings) -> CircuitPolicy:
    return CircuitPolicy(
        failure_threshold=settings.breaker_failures,
        cooldown_seconds=settings.breaker_cooldown_seconds,
        success_threshold=settings.breaker_successes,
    )


def listening(settings: Settings) -> ListeningLimits:
    return ListeningLimits(
        max_container_bytes=settings.max_audio_bytes,
        partial_ms=settings.stt_partial_ms,
        endpoint_ms=settings.stt_endpoint_ms,
        semantic=settings.stt_turn_detection == "semantic",
        incomplete_ms=settings.stt_incomplete_ms,
        early_ms=settings.stt_early_ms,
    )


def noise_reduction(settings: Settings) -> NoiseReduction:
    return parse_mode(settings.noise_reduction)  # validated with the settings


def connections(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(
        max_connections=settings.ws_max_connections, idle_seconds=settings.ws_idle_seconds
    )


def conversations(settings: Settings) -> ConversationLimits:
    return ConversationLimits(
        max_items=settings.conversation_max_items, max_chars=settings.conversation_max_chars
    )
