"""Where Redis is: REDIS_URL (one server or a Cluster) or REDIS_SENTINELS, checked and parsed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import msgspec

Address = tuple[str, int]
SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")


class RedisTarget(msgspec.Struct, frozen=True, kw_only=True):
    """What RedisLink needs: `url` carries the server, or (Sentinel, Cluster) only the
    password, user, database and TLS."""

    url: str | None
    sentinels: tuple[Address, ...] = ()
    sentinel_master: str = "mymaster"
    sentinel_password: str | None = None
    cluster_nodes: tuple[Address, ...] = ()


class RedisSettingsError(ValueError):
    """A Redis setting we cannot use; the message names it (Settings turns it into its own)."""


class RedisSettings(Protocol):
    @property
    def redis_url(self) -> str | None: ...
    @property
    def redis_sentinels(self) -> Sequence[str]: ...
    @property
    def redis_sentinel_master(self) -> str: ...
    @property
    def redis_sentinel_password(self) -> str | None: ...


def redis_target(settings: RedisSettings) -> RedisTarget | None:
    """None without Redis (neither REDIS_URL nor REDIS_SENTINELS)."""
    url, master = settings.redis_url, settings.redis_sentinel_master
    sentinels = tuple(addresses("REDIS_SENTINELS", ",".join(settings.redis_sentinels)))
    if url is None and not sentinels:
        return None
    if not master.strip():
        raise RedisSettingsError("REDIS_SENTINEL_MASTER must not be empty")
    password = settings.redis_sentinel_password
    target = RedisTarget(
        url=url, sentinels=sentinels, sentinel_master=master, sentinel_password=password
    )
    if url is None:
        return target
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES or "://" not in url:
        raise RedisSettingsError(
            "REDIS_URL must start with redis://, rediss://, unix://, redis+cluster:// "
            "or rediss+cluster://"
        )
    if scheme.endswith("+cluster"):
        if sentinels:
            raise RedisSettingsError("REDIS_SENTINELS cannot go with a cluster REDIS_URL")
        return _cluster(url)
    if sentinels and scheme == "unix":
        raise RedisSettingsError("with REDIS_SENTINELS, REDIS_URL must be redis:// or rediss://")
    return target


def _cluster(url: str) -> RedisTarget:
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    nodes = tuple(addresses("REDIS_URL", hosts))
    if not nodes:
        raise RedisSettingsError("REDIS_URL: a cluster URL names host:port of at least one node")
    if parts.path not in ("", "/", "/0"):
        raise RedisSettingsError("REDIS_URL: a Redis Cluster has database 0 only")
    scheme = parts.scheme.removesuffix("+cluster")
    first = f"{credentials}@{hosts.split(',')[0]}" if credentials else hosts.split(",")[0]
    plain = urlunsplit((scheme, first, "/0", parts.query, ""))
    return RedisTarget(url=plain, cluster_nodes=nodes)


def addresses(name: str, text: str) -> list[Address]:
    found = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise RedisSettingsError(f"{name}: {item!r} is not host:port")
        found.append((host.strip("[]"), int(port)))
    return found
