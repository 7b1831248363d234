"""The default cache on the real (embedded) Redis, private to one test.

Tests keep the test settings' Redis cache; what each test gets of its own is a ``KEY_PREFIX``
(the settings' prefix plus a random suffix). Rail counts and presence are cached by office and conversation
id, and those ids repeat across tests, pytest-xdist workers and concurrent runs; a prefix per test keeps
them apart on one shared Redis database.

Never call ``cache.clear()`` in a test: on Redis it is ``FLUSHDB``, which empties the database every test
process shares, Celery's queues included. ``PrivateCache.clear()`` deletes this test's keys only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis
from django.core.cache import cache

REDIS_CACHE_BACKEND = "django.core.cache.backends.redis.RedisCache"


@dataclass(frozen=True)
class PrivateCache:
    """This test's slice of the Redis cache, read straight from Redis (not through Django's cache)."""

    prefix: str
    location: str
    client: redis.Redis

    def raw_key(self, key: str) -> str:
        """The key as stored in Redis: Django's ``prefix:version:key``."""
        return str(cache.make_key(key))

    def exists(self, key: str) -> bool:
        return bool(self.client.exists(self.raw_key(key)))

    def keys(self) -> list[str]:
        """Every key stored under this test's prefix (as Django names them, without the prefix)."""
        head = f"{self.prefix}:"
        return sorted(
            raw.decode().removeprefix(head).split(":", 1)[1]
            for raw in self.client.scan_iter(match=f"{head}*", count=1000)
        )

    def clear(self) -> None:
        """Delete this test's keys, and only them."""
        raw = list(self.client.scan_iter(match=f"{self.prefix}:*", count=1000))
        if raw:
            self.client.delete(*raw)


def private_cache_settings(default: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``CACHES`` with the same Redis as ``default`` under a prefix of this test's own, and that prefix."""
    if default["BACKEND"] != REDIS_CACHE_BACKEND:
        raise AssertionError(f"the test settings' cache must be Redis, not {default['BACKEND']}")
    prefix = f"{default.get('KEY_PREFIX', '')}-{uuid.uuid4().hex[:12]}"
    return {"default": {**default, "KEY_PREFIX": prefix}}, prefix


def redis_upstream(location: str) -> tuple[Path | tuple[str, int], str]:
    """Where a cache LOCATION's Redis listens (a unix socket or host and port), and its database number: what
    a ``tests.faults.TcpProxy`` in front of it needs."""
    parts = urlsplit(location)
    if parts.scheme == "unix":
        return Path(parts.path), parse_qs(parts.query).get("db", ["0"])[0]
    return (parts.hostname or "127.0.0.1", parts.port or 6379), parts.path.strip("/") or "0"
