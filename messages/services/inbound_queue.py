"""Waking the worker for new inbound texts: one coalesced nudge per burst, and the drain it starts.

The record of work to do is the message row itself (``processed_at`` NULL, with a partial index). Publishing
a Celery task per text cost the webhook ~1.3 ms of its ~3 ms budget, so the webhook only *nudges*: an atomic
``SET NX`` of a short-lived Redis key, and a publish of ``tasks.inbound_drain`` only by whoever set it. The
drain deletes the key first and then works through everything pending, so a text committed at any moment is
either seen by a running drain or nudges a new one. If Redis is down, nothing is lost: the sweeper starts a
drain for anything pending longer than a minute (PLAYBOOK §6.3).
"""

from __future__ import annotations

import functools
import logging
import time

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from civicdesk.queueing import enqueue

logger = logging.getLogger(__name__)

NUDGE_KEY = "inbound-drain-nudge"


def inbound_nudge_on_commit() -> None:
    transaction.on_commit(inbound_nudge)


def inbound_nudge() -> bool:
    """Start a drain unless one is already on its way. Never raises; returns True if it published."""
    from messages import tasks  # tasks import services; keep the import graph one-way at load time

    try:
        if not _nudge_key_set():
            return False
    except Exception:
        logger.warning("could not nudge the inbound drain; the sweeper will start one", exc_info=True)
        return False
    if enqueue(tasks.inbound_drain):
        return True
    try:
        cache.delete(NUDGE_KEY)  # let the next text try to publish again
    except Exception:
        logger.debug("could not clear the inbound nudge key", exc_info=True)
    return False


def _nudge_key_set() -> bool:
    """``SET key 1 NX EX …`` in the default cache's Redis: True if this call set it.

    Straight through one redis-py client per process: Django's cache builds a new client object for every
    operation, which cost the webhook more CPU (~0.3 ms) than the round trip itself.
    """
    client = _redis_client()
    if client is None:  # the default cache is not Redis (e.g. a test or a small deployment)
        return bool(cache.add(NUDGE_KEY, 1, timeout=settings.INBOUND_NUDGE_SECONDS))
    key = cache.make_key(NUDGE_KEY)
    return bool(client.set(key, b"1", nx=True, ex=settings.INBOUND_NUDGE_SECONDS))


@functools.cache
def _redis_client() -> redis.Redis | None:
    config = settings.CACHES["default"]
    if config["BACKEND"] != "django.core.cache.backends.redis.RedisCache":
        return None
    options = config.get("OPTIONS", {})
    return redis.Redis.from_url(
        config["LOCATION"],
        socket_connect_timeout=options.get("socket_connect_timeout", 0.5),
        socket_timeout=options.get("socket_timeout", 0.5),
    )


def inbound_drain(*, batch_size: int = 200, budget_seconds: float = 5.0) -> int:
    """Process every pending inbound text, oldest first, in batches. Returns how many were processed.

    Each message is visited once per drain (the scan moves forward by id), so a message whose processing
    fails is left pending for the sweeper instead of spinning here. After ``budget_seconds`` the drain
    nudges a successor and returns: under a steady stream of texts it would otherwise never finish, and
    the worker's other tasks (replies to send) would wait behind it.
    """
    from messages.services.processing import inbound_process_pending

    try:
        cache.delete(NUDGE_KEY)
    except Exception:
        logger.warning("could not clear the inbound nudge key", exc_info=True)
    deadline = time.monotonic() + budget_seconds
    after = 0
    done = 0
    while True:
        last, processed = inbound_process_pending(after=after, limit=batch_size)
        done += processed
        if last is None:
            return done
        after = last
        if time.monotonic() > deadline:
            inbound_nudge()
            return done
