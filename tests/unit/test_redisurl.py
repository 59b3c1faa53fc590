"""cache.redisurl: kolla's tooz-style Sentinel URLs, redis+sentinel URLs, plain URLs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cache.redisurl import PlainRedis, SentinelRedis, parse_redis_url
from gateway.settings import Settings


def test_kollas_url() -> None:
    url = (
        "redis://default:s3cr%40t@10.0.0.11:26379?sentinel=kolla"
        "&sentinel_fallback=10.0.0.12:26379&sentinel_fallback=10.0.0.13:26379"
        "&db=0&socket_timeout=60&retry_on_timeout=yes"
    )
    assert parse_redis_url(url) == SentinelRedis(
        service="kolla",
        sentinels=(("10.0.0.11", 26379), ("10.0.0.12", 26379), ("10.0.0.13", 26379)),
        db=0,
        username="default",
        password="s3cr@t",
    )


def test_the_issues_example() -> None:
    target = parse_redis_url(
        "redis://default:pw@h1:26379?sentinel=kolla&sentinel_fallback=h2:26379&db=0"
    )
    assert isinstance(target, SentinelRedis)
    assert target.sentinels == (("h1", 26379), ("h2", 26379))
    assert (target.service, target.username, target.password) == ("kolla", "default", "pw")


def test_tooz_options() -> None:
    target = parse_redis_url(
        "rediss://:pw@s1?sentinel=main&db=3&sentinel_username=watcher&sentinel_password=spw"
    )
    assert target == SentinelRedis(
        service="main",
        sentinels=(("s1", 26379),),
        db=3,
        password="pw",
        sentinel_username="watcher",
        sentinel_password="spw",
        ssl=True,
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "redis+sentinel://s1:26380,s2,[::1]:26381/cache/2",
            SentinelRedis(
                service="cache", sentinels=(("s1", 26380), ("s2", 26379), ("::1", 26381)), db=2
            ),
        ),
        (
            "redis+sentinel://u:p@s1/cache?sentinel_password=x",
            SentinelRedis(
                service="cache",
                sentinels=(("s1", 26379),),
                username="u",
                password="p",
                sentinel_password="x",
            ),
        ),
        (
            "rediss+sentinel://s1/cache?db=4",
            SentinelRedis(service="cache", sentinels=(("s1", 26379),), db=4, ssl=True),
        ),
    ],
)
def test_redis_sentinel_urls(url: str, expected: SentinelRedis) -> None:
    assert parse_redis_url(url) == expected


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://:pw@cache:6380/1", "unix:///run/redis.sock"]
)
def test_plain_urls_are_redis_pys(url: str) -> None:
    assert parse_redis_url(url) == PlainRedis(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://s1:26379", "service"),
        ("redis+sentinel:///cache", "at least one Sentinel"),
        ("redis+sentinel://s1:port/cache", "not a Sentinel address"),
        ("redis+sentinel://s1/cache/1/2", "expected /<service>"),
        ("redis://h1:26379?sentinel=", "service"),
        ("redis://h1:26379?sentinel=kolla&db=x", "db must be a number"),
        ("redis://h1:26379?sentinel=kolla&sentinel_fallback=h2:99999", "not a Sentinel address"),
        ("redis://h1:26379?sentinel=kolla&sentinels=h2", "unknown Redis URL option"),
    ],
)
def test_unusable_sentinel_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_redis_url(url)


def test_passwords_stay_out_of_repr() -> None:
    target = parse_redis_url("redis://:hunter2@h1?sentinel=kolla&sentinel_password=hunter3")
    assert "hunter" not in repr(target)


def test_settings_refuse_an_unusable_url() -> None:
    with pytest.raises(ValidationError, match="unknown Redis URL option"):
        Settings(redis_url="redis://h1?sentinel=kolla&bogus=1")
    with pytest.raises(ValidationError, match="redis_cluster cannot be used"):
        Settings(redis_url="redis+sentinel://h1/kolla", redis_cluster=True)
