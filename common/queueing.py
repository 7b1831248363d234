"""Enqueue Celery work without ever failing the caller.

Work is recorded in PostgreSQL first; the queue only speeds it up. If Redis is down at commit time, the
sweeper (Celery beat) finds the pending rows and re-enqueues them, so a failed publish is logged, not raised.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

import redis
from celery import Task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from common.caching import cache_failed, cache_usable

logger = logging.getLogger(__name__)


def enqueue(task: Task[..., Any], *args: Any, countdown: float | None = None) -> bool:
    """Publish now. Returns False (and logs) if the broker is unreachable."""
    try:
        options: dict[str, Any] = {"retry": False}
        if countdown is not None:
            options["countdown"] = countdown
        task.apply_async(args=args, **options)
    except Exception:
        logger.warning("could not enqueue %s%r; the sweeper will retry", task.name, args, exc_info=True)
        return False
    return True


def enqueue_on_commit(task: Task[..., Any], *args: Any, countdown: float | None = None) -> None:
    """Publish after the current transaction commits (immediately if there is none)."""
    transaction.on_commit(lambda: enqueue(task, *args, countdown=countdown))


def nudge(key: str, task: Task[..., Any], *, seconds: int, memo_seconds: float = 0.0) -> bool:
    """Publish ``task`` unless a nudge under ``key`` is still pending: one publish per burst of work.

    For work whose durable record is a database row and whose task drains everything pending: the caller
    writes its row, then nudges on commit. ``SET key NX EX seconds`` decides who publishes; the drain calls
    :func:`nudge_clear` before it starts reading, so work committed at any moment is either seen by a
    running drain or nudges a new one. Never raises: if Redis is down, the row waits for the sweeper.
    Returns True if this call published.

    ``memo_seconds``: a process that saw the key set (or set it) less than this long ago skips the round
    trip to Redis. That is safe only for a drain that, after clearing the key, keeps reading until a pass
    from the very beginning that starts at least ``memo_seconds`` after it began finds nothing: the drain
    that clears the key seen here starts after it was seen, so it still reads whatever this process commits
    within ``memo_seconds`` of seeing it (``messages.services.inbound_queue.inbound_drain``).

    A nudge that cannot reach Redis is a failed call to the cache's Redis (:mod:`common.caching`): this
    process then skips Redis for ``CACHE_OUTAGE_SECONDS``, for nudges and pages alike. A Redis that accepts
    connections and never answers costs a nudge its socket timeouts (0.5 s for ``SET NX``, about 1 s more
    for a publish); without the window every webhook in the outage would pay them, and a web thread would
    take two texts a second. The rows wait meanwhile: the first nudge after the window starts a drain that
    takes them all, and the sweeper is the backstop.
    """
    if not cache_usable():
        return False
    if memo_seconds > 0:
        seen = _seen_set.get(key)
        if seen is not None and time.monotonic() - seen < memo_seconds:
            return False
    asked = time.monotonic()  # before the round trip: the key was set at some moment after this
    try:
        if not _key_set(key, seconds):
            _seen_set[key] = asked
            return False
    except Exception:
        cache_failed(f"nudge {task.name}; the sweeper will start it")
        return False
    if enqueue(task):
        _seen_set[key] = asked
        return True
    cache_failed(f"publish {task.name}; the sweeper will start it")
    nudge_clear(key)  # let the next caller try to publish again
    return False


# When this process last saw each nudge key set, by time.monotonic(); see nudge(memo_seconds=...).
_seen_set: dict[str, float] = {}


def nudge_clear(key: str) -> None:
    """Forget a pending nudge (a drain is starting, or its publish failed). Never raises."""
    _seen_set.pop(key, None)
    try:
        client = cache_redis_client()
        if client is None:
            cache.delete(key)
        else:
            client.delete(cache.make_key(key))
    except Exception:
        logger.warning("could not clear the nudge key %s", key, exc_info=True)


def _key_set(key: str, seconds: int) -> bool:
    """``SET key 1 NX EX seconds`` in the default cache's Redis (with the cache's key prefix).

    Straight through one redis-py client per process: Django's cache builds a new client object for every
    operation, which cost a webhook more CPU (~0.3 ms) than the round trip itself.
    """
    client = cache_redis_client()
    if client is None:  # the default cache is not Redis (e.g. a small deployment)
        return bool(cache.add(key, 1, timeout=seconds))
    return bool(client.set(cache.make_key(key), b"1", nx=True, ex=seconds))


def cache_redis_client() -> redis.Redis | None:
    """The client for the default cache's Redis as the settings name it now (one per location and timeouts,
    so a changed ``CACHES`` is followed, as Django's own cache handler follows it)."""
    config = settings.CACHES["default"]
    if config["BACKEND"] != "django.core.cache.backends.redis.RedisCache":
        return None
    options = config.get("OPTIONS", {})
    return _client_for(
        config["LOCATION"], options.get("socket_connect_timeout", 0.5), options.get("socket_timeout", 0.5)
    )


@functools.cache
def _client_for(location: str, connect_timeout: float, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(location, socket_connect_timeout=connect_timeout, socket_timeout=timeout)
