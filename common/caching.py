"""Using the default cache (Redis) without letting it fail or stall the page that uses it.

What the pages keep in the cache only speeds them up (the inbox's rail counts) or is advisory (who is
replying); the database has the truth. So every such call is wrapped: on any error the caller logs through
:func:`cache_failed` and falls back (counts from the database, no presence notice), and a page never fails
because of its cache.

A Redis that is down refuses at once, but a Redis that hangs (a partition, a stuck failover) costs each call
the cache's ``socket_timeout`` (0.5 s). The rule that bounds it: **after a failed call, this process stops
asking the cache for** ``CACHE_OUTAGE_SECONDS`` (:func:`cache_usable` is False), so a hung Redis costs one
timeout per process per window, not one per page and per poll of every member (each would hold a web
thread for the timeout), and logs one warning per window, not one per request. When the window has passed
the next call tries again, so pages use the cache again as soon as Redis is back.

Callers that must not skip a write (dropping the rail counts after a triage change) try anyway and only
report their failure; skipping reads and advisory writes is what the window is for.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

logger = logging.getLogger(__name__)

# time.monotonic() of the last failed cache call in this process, or None.
_failed_at: float | None = None


def cache_usable() -> bool:
    """False within ``CACHE_OUTAGE_SECONDS`` of a failed cache call in this process."""
    failed_at = _failed_at
    return failed_at is None or time.monotonic() - failed_at >= settings.CACHE_OUTAGE_SECONDS


def cache_failed(what: str) -> None:
    """Record that a cache call failed (call it from the ``except``), and log it with the exception."""
    global _failed_at  # noqa: PLW0603  # one process-wide clock, read by every thread
    _failed_at = time.monotonic()
    logger.warning(
        "cache unavailable (%s); not asking it again for %s s",
        what,
        settings.CACHE_OUTAGE_SECONDS,
        exc_info=True,
    )


def cache_outage_forget() -> None:
    """Ask the cache again from the next call on (tests start each case with a healthy cache)."""
    global _failed_at  # noqa: PLW0603  # see cache_failed
    _failed_at = None
