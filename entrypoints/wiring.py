"""Builders of the production adapters, one per port; only bootstrap calls them.

Imports are inside each builder so a test that swaps an adapter never loads its model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from application.ports import (
    AudioCache,
    AudioCodec,
    AudioProcessor,
    BreakerStore,
    Clock,
    EventLog,
    LimitStore,
    SentimentAnalyzer,
    StatsBoard,
)
from domain.events import DomainEvent
from entrypoints.settings import Settings

Hook = Callable[[], Awaitable[None]]

log = structlog.get_logger(__name__)


def system_clock() -> Clock:
    from adapters.system_clock import SystemClock

    return SystemClock()


def codec(settings: Settings) -> AudioCodec:
    from adapters.pyav_codec import PyAVAudioCodec

    return PyAVAudioCodec(
        max_seconds=settings.max_audio_seconds,
        max_channels=settings.max_audio_channels,
        max_rate=settings.max_sample_rate,
    )


def processor() -> AudioProcessor:
    from adapters.pydub_processor import PydubAudioProcessor

    return PydubAudioProcessor()


def sentiment() -> SentimentAnalyzer:
    from adapters.textblob_sentiment import TextBlobSentimentAnalyzer

    return TextBlobSentimentAnalyzer()


def cache(settings: Settings, clock: Clock) -> AudioCache:
    from adapters.memory_cache import InMemoryAudioCache

    return InMemoryAudioCache(
        max_bytes=settings.cache_max_bytes, ttl_seconds=settings.cache_ttl_seconds, clock=clock
    )


def event_log(settings: Settings) -> EventLog:
    from adapters.memory_event_log import InMemoryEventLog

    return InMemoryEventLog(retention=settings.event_retention)


def redis_link(settings: Settings, on_start: list[Hook], on_stop: list[Hook]) -> Any:
    from adapters.redis_link import RedisLink
    from entrypoints.redis_settings import redis_target

    target = redis_target(settings)
    assert target is not None
    link = RedisLink(
        target.url,
        timeout=settings.redis_timeout_seconds,
        # A failover ends within seconds: look for the new primary often (a cheap ask).
        max_backoff=0.5 if target.sentinels else 5.0,
        sentinels=target.sentinels,
        sentinel_master=target.sentinel_master,
        sentinel_password=target.sentinel_password,
        cluster_nodes=target.cluster_nodes,
    )
    on_start.append(link.connect)
    on_stop.append(link.close)
    return link


def redis_cache(settings: Settings, link: Any) -> AudioCache:
    from adapters.redis_cache import RedisAudioCache

    return RedisAudioCache(
        link, ttl_seconds=settings.cache_ttl_seconds, prefix=f"{settings.redis_prefix}:cache"
    )


def redis_event_log(
    settings: Settings, link: Any, on_start: list[Hook], on_stop: list[Hook]
) -> EventLog:
    from adapters.redis_event_log import RedisStreamEventLog

    events = RedisStreamEventLog(
        link,
        stream=event_stream(settings, link),
        retention=settings.event_retention,
        buffer_max=settings.event_buffer_max,
        confirm_seconds=settings.event_confirm_seconds,
        # With Sentinel, a batch counts as written once the replica has it: a failover then
        # loses no event of a request answered.
        replicas=1 if settings.redis_sentinels else 0,
        # Well inside the socket timeout: a WAIT no replica answers must end as a reply.
        replica_wait_ms=max(10, int(500 * settings.redis_timeout_seconds)),
    )
    on_start.append(events.start)
    on_stop.append(events.close)
    return events


def event_stream(settings: Settings, link: Any) -> str:
    """The stream's key: with a Cluster hash tag, so keys named `<stream>:…` share its slot."""
    return str(link.tag(f"{settings.redis_prefix}:events"))


def observed(
    events: EventLog, subscribers: Sequence[Callable[[Sequence[DomainEvent]], None]]
) -> EventLog:
    from adapters.observed_event_log import ObservedEventLog

    return ObservedEventLog(events, subscribers)


def limits(settings: Settings, link: Any | None) -> LimitStore:
    if link is not None:
        from adapters.redis_limits import RedisLimits

        return RedisLimits(link, prefix=settings.redis_prefix)
    from adapters.memory_limits import InMemoryLimits

    return InMemoryLimits()


def breaker_store(settings: Settings, link: Any | None, clock: Clock) -> BreakerStore | None:
    """Where circuit openings are shared: the Redis of REDIS_URL; none for a lone instance."""
    if link is None:
        return None
    from adapters.redis_breaker_store import RedisBreakerStore

    return RedisBreakerStore(link, prefix=settings.redis_prefix)


def advertiser(name: str) -> Any:
    """Zeroconf discovery of the Wyoming service under `name` (WYOMING_ZEROCONF)."""
    from adapters.zeroconf_advertiser import ZeroconfAdvertiser

    return ZeroconfAdvertiser(name)


def recording_seconds(path: Any) -> float:
    """How long a recording is, from its container (0 when it cannot tell): for a progress bar."""
    from adapters.pyav_codec import probe_seconds

    return probe_seconds(str(path))


def stats_board(settings: Settings, events: EventLog) -> StatsBoard | None:
    """Where one leader publishes the stats for every instance: next to a Redis stream event
    log; None for any other log (each process folds its own, as in memory)."""
    from adapters.redis_event_log import RedisStreamEventLog

    if not isinstance(events, RedisStreamEventLog):
        return None
    from adapters.redis_stats_board import RedisStatsBoard

    return RedisStatsBoard(events, prefix=settings.redis_prefix)
