"""Where Redis is: a plain ``redis://`` URL, or Redis Sentinel in one of two spellings.

- **tooz's** (what kolla-ansible writes for OpenStack services)::

      redis://[user:password@]sentinel1:26379?sentinel=<service>
          &sentinel_fallback=sentinel2:26379&sentinel_fallback=sentinel3:26379&db=0

  The host is the first Sentinel, each ``sentinel_fallback`` another one, ``sentinel``
  the monitored service's name.
- **redis+sentinel** (redis-py's convention in LangChain, RedisVL, Prefect)::

      redis+sentinel://[user:password@]sentinel1[:26379][,sentinel2[:26379]...]/<service>[/db]

In both, the URL's user and password authenticate to the primary (as tooz and kolla use
them: kolla's Sentinels need no password, and reach the primary with ``auth-pass``);
``sentinel_username`` and ``sentinel_password`` options authenticate to Sentinels that
require it. ``rediss`` schemes (or ``ssl=true``) use TLS for both. Options that tune
connections (``socket_timeout``, ``retry_on_timeout``...) are accepted and ignored: the
store's own deadlines apply. :func:`parse_redis_url` is pure; :mod:`cache.redisstore` builds the
client.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["DEFAULT_SENTINEL_PORT", "PlainRedis", "RedisTarget", "SentinelRedis", "parse_redis_url"]

DEFAULT_SENTINEL_PORT = 26379
_TRUE = frozenset({"1", "t", "true", "on", "y", "yes"})
# tooz's and redis-py's connection-tuning options: accepted, overridden by the store's.
_IGNORED = frozenset(
    {
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "retry_on_timeout",
        "health_check_interval",
        "timeout",
        "encoding",
        "namespace",
        "lock_timeout",
        "membership_timeout",
        "client_name",
    }
)
_SENTINEL_OPTIONS = frozenset(
    {"sentinel", "sentinel_fallback", "sentinel_username", "sentinel_password", "db", "ssl"}
)


@dataclass(frozen=True, slots=True)
class PlainRedis:
    """One Redis (or a Cluster seed node): redis-py reads the URL itself."""

    url: str


@dataclass(frozen=True, slots=True)
class SentinelRedis:
    """The primary of ``service``, as the Sentinels tell it."""

    service: str
    sentinels: tuple[tuple[str, int], ...]
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False

    def __repr__(self) -> str:  # never the passwords
        hosts = ",".join(f"{h}:{p}" for h, p in self.sentinels)
        return f"SentinelRedis(service={self.service!r}, sentinels={hosts}, db={self.db})"


RedisTarget = PlainRedis | SentinelRedis


def _address(text: str) -> tuple[str, int]:
    host, colon, port = text.strip().rpartition(":")
    if not colon:
        host, port = text.strip(), str(DEFAULT_SENTINEL_PORT)
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not a Sentinel address (host:port): {text!r}")
    return host, int(port)


def _one(options: dict[str, list[str]], name: str) -> str | None:
    found = options.get(name)
    return found[-1] if found else None


def _db(text: str | None) -> int:
    if text is None or text == "":
        return 0
    if not text.isdigit():
        raise ValueError(f"db must be a number, got {text!r}")
    return int(text)


def _userinfo(netloc: str) -> tuple[str | None, str | None, str]:
    """``(user, password, hosts)`` of a URL's authority (hosts may be a list)."""
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        return None, None, netloc
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if colon else None), hosts


def _options(query: str) -> dict[str, list[str]]:
    options = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(options) - _SENTINEL_OPTIONS - _IGNORED)
    if unknown:
        raise ValueError(f"unknown Redis URL option(s): {', '.join(unknown)}")
    return options


def _sentinel(
    service: str,
    sentinels: list[tuple[str, int]],
    user: str | None,
    password: str | None,
    options: dict[str, list[str]],
    db: int,
    tls: bool,
) -> SentinelRedis:
    if not service:
        raise ValueError("a Sentinel URL needs the monitored service's name")
    ssl = tls or (_one(options, "ssl") or "").strip().lower() in _TRUE
    return SentinelRedis(
        service=service,
        sentinels=tuple(sentinels),
        db=db,
        username=user,
        password=password,
        sentinel_username=_one(options, "sentinel_username"),
        sentinel_password=_one(options, "sentinel_password"),
        ssl=ssl,
    )


def parse_redis_url(url: str) -> RedisTarget:
    """What ``url`` names (see the module docstring); :class:`ValueError` when it is a
    Sentinel URL cellgate cannot use (no service, a bad address, an unknown option)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("redis+sentinel", "rediss+sentinel"):
        user, password, hosts = _userinfo(parts.netloc)
        sentinels = [_address(h) for h in hosts.split(",") if h.strip()]
        if not sentinels:
            raise ValueError("a redis+sentinel URL needs at least one Sentinel address")
        path = [segment for segment in parts.path.split("/") if segment]
        if len(path) > 2:
            raise ValueError(f"expected /<service>[/<db>], got {parts.path!r}")
        options = _options(parts.query)
        db = _db(path[1] if len(path) > 1 else _one(options, "db"))
        service = unquote(path[0]) if path else ""
        return _sentinel(
            service, sentinels, user, password, options, db, scheme.startswith("rediss")
        )
    if scheme in ("redis", "rediss") and "sentinel" in parse_qs(parts.query, True):
        options = _options(parts.query)
        user, password, host = _userinfo(parts.netloc)
        sentinels = [_address(host)]
        sentinels += [_address(a) for a in options.get("sentinel_fallback", []) if a.strip()]
        path_db = parts.path.strip("/")
        db = _db(_one(options, "db") if _one(options, "db") is not None else path_db)
        service = _one(options, "sentinel") or ""
        return _sentinel(service, sentinels, user, password, options, db, scheme == "rediss")
    return PlainRedis(url)
