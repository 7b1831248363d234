"""Waking the worker for new inbound texts: one coalesced nudge per burst, and the drain it starts.

The record of work to do is the message row itself (``processed_at`` NULL, with a partial index). Publishing
a Celery task per text cost the webhook ~1.3 ms of its ~3 ms budget, so the webhook only *nudges*: an atomic
``SET NX`` of a short-lived Redis key, and a publish of ``tasks.inbound_drain`` only by whoever set it. The
drain deletes the key first and then works through everything pending, so a text committed at any moment is
either seen by a running drain or nudges a new one. If Redis is down, nothing is lost: the sweeper starts a
drain for anything pending longer than a minute (PLAYBOOK §6.3).
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import transaction

from civicdesk.queueing import nudge, nudge_clear

logger = logging.getLogger(__name__)

NUDGE_KEY = "inbound-drain-nudge"


def inbound_nudge_on_commit() -> None:
    transaction.on_commit(inbound_nudge)


def inbound_nudge() -> bool:
    """Start a drain unless one is already on its way. Never raises; returns True if it published."""
    from messages import tasks  # tasks import services; keep the import graph one-way at load time

    return nudge(NUDGE_KEY, tasks.inbound_drain, seconds=settings.INBOUND_NUDGE_SECONDS)


def inbound_drain(*, batch_size: int = 200, budget_seconds: float = 5.0, pause_seconds: float = 0.2) -> int:
    """Process every pending inbound text, oldest first, in batches. Returns how many were processed.

    Each message is visited once per drain (the scan moves forward by id), so a message whose processing
    fails is left pending for the sweeper instead of spinning here. After ``budget_seconds`` the drain
    nudges a successor and returns: under a steady stream of texts it would otherwise never finish, and
    the worker's other tasks (replies to send) would wait behind it. After a short batch it pauses for
    ``pause_seconds`` before reading again: under a steady trickle of texts, reading again at once would
    busy-poll the database for one or two texts at a time (half a core at 100 texts/s, measured), while a
    pause lets a batch gather.
    """
    from messages.services.processing import inbound_process_pending

    nudge_clear(NUDGE_KEY)
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
        if processed < batch_size:
            time.sleep(pause_seconds)
