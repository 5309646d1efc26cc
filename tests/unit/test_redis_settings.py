"""Where Redis is: one server, Sentinel or a Cluster, from the environment; clear errors."""

from __future__ import annotations

import pytest

from entrypoints.redis_settings import redis_target
from entrypoints.settings import Settings, SettingsError


def test_sentinels_alone_are_enough() -> None:
    settings = Settings.from_env(
        {"REDIS_SENTINELS": "s1:26379, s2:26380", "REDIS_SENTINEL_PASSWORD": "pw"}
    )
    target = redis_target(settings)
    assert settings.redis_enabled
    assert target is not None
    assert target.url is None
    assert target.sentinels == (("s1", 26379), ("s2", 26380))
    assert (target.sentinel_master, target.sentinel_password) == ("mymaster", "pw")


def test_with_sentinels_the_url_gives_password_and_database() -> None:
    settings = Settings.from_env(
        {
            "REDIS_SENTINELS": "s1:26379",
            "REDIS_SENTINEL_MASTER": "voice",
            "REDIS_URL": "redis://:secret@ignored/2",
            "EVENT_LOG": "redis",
        }
    )
    target = redis_target(settings)
    assert target is not None
    assert (target.url, target.sentinel_master) == ("redis://:secret@ignored/2", "voice")


def test_a_cluster_url_names_every_startup_node() -> None:
    target = redis_target(Settings.from_env({"REDIS_URL": "rediss+cluster://u:p@a:7000,b:7001"}))
    assert target is not None
    assert target.cluster_nodes == (("a", 7000), ("b", 7001))
    assert target.url == "rediss://u:p@a:7000/0"  # credentials and TLS for every node
    assert target.sentinels == ()


def test_no_redis_without_url_or_sentinels() -> None:
    settings = Settings.from_env({})
    assert redis_target(settings) is None
    assert not settings.redis_enabled


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REDIS_SENTINELS": "s1"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "s1:99999"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "s1:1", "REDIS_URL": "unix:///tmp/r.sock"}, "REDIS_URL"),
        ({"REDIS_SENTINELS": "s1:1", "REDIS_URL": "redis+cluster://a:1"}, "REDIS_SENTINELS"),
        ({"REDIS_URL": "redis+cluster://a:7000/3"}, "REDIS_URL"),
        ({"REDIS_URL": "redis+cluster://a"}, "REDIS_URL"),
        ({"REDIS_URL": "http://a:6379"}, "REDIS_URL"),
        ({"EVENT_LOG": "redis"}, "REDIS_SENTINELS"),
    ],
)
def test_unusable_values_name_their_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_an_empty_master_name_is_refused() -> None:
    settings = Settings(redis_sentinels=("s1:26379",), redis_sentinel_master=" ")
    with pytest.raises(SettingsError, match="REDIS_SENTINEL_MASTER"):
        settings.validate()
