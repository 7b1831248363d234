"""Waking the worker for new inbound texts: one coalesced nudge per burst, and the drain it starts.

The record of work to do is the message row itself (``processed_at`` NULL, with a partial index). Publishing
a Celery task per text cost the webhook ~1.3 ms of its ~3 ms budget, so the webhook only *nudges*: an atomic
``SET NX`` of a short-lived Redis key, and a publish of ``tasks.inbound_drain`` only by whoever set it. The
drain deletes the key first and then works through everything pending, so a text committed at any moment is
either seen by a running drain or nudges a new one. If Redis is down, nothing is lost: the sweeper starts a
drain for anything pending longer than a minute.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import transaction

from common.queueing import nudge, nudge_clear
from messages.services.processing import inbound_process_pending

logger = logging.getLogger(__name__)

NUDGE_KEY = "inbound-drain-nudge"


def inbound_nudge_on_commit() -> None:
    transaction.on_commit(inbound_nudge)


def inbound_nudge(*, memo: bool = True) -> bool:
    """Start a drain unless one is already on its way. Never raises; returns True if it published.

    With ``memo``, a process that saw a drain on its way less than ``INBOUND_NUDGE_MEMO_SECONDS`` ago does not
    ask Redis again (see :func:`inbound_drain` for why that is safe).
    """
    from messages import tasks  # tasks import services; keep the import graph one-way at load time

    return nudge(
        NUDGE_KEY,
        tasks.inbound_drain,
        seconds=settings.INBOUND_NUDGE_SECONDS,
        memo_seconds=settings.INBOUND_NUDGE_MEMO_SECONDS if memo else 0.0,
    )


def inbound_drain(*, batch_size: int = 200, budget_seconds: float = 5.0, pause_seconds: float = 0.2) -> int:
    """Process every pending inbound text, oldest first, in batches. Returns how many were processed.

    The scan moves forward by id, and a message whose processing fails is left pending for the sweeper
    instead of spinning here. After ``budget_seconds`` the drain nudges a successor and returns: under a
    steady stream of texts it would otherwise never finish, and the worker's other tasks (replies to send)
    would wait behind it. After a short batch it pauses for ``pause_seconds`` before reading again: under a
    steady trickle of texts, reading again at once would busy-poll the database for one or two texts at a
    time (half a core at 100 texts/s, measured), while a pause lets a batch gather.

    It returns only after a pass from the first id, begun at least ``INBOUND_NUDGE_MEMO_SECONDS`` after the
    drain cleared its key, finds nothing new. Two reasons: a text can commit after texts with higher ids
    were read, and a webhook that saw the key set less than that long ago does not nudge again
    (common.queueing.nudge). The drain that clears the key such a webhook saw starts after the webhook
    saw it, so that final pass begins after the webhook's commit and reads its text.
    """
    nudge_clear(NUDGE_KEY)
    started = time.monotonic()
    settled = started + settings.INBOUND_NUDGE_MEMO_SECONDS
    deadline = started + budget_seconds
    failed: set[int] = set()  # processing raised: left for the sweeper, not retried by this drain
    after = 0
    done = 0
    while True:
        read_at = time.monotonic()
        last, processed = inbound_process_pending(after=after, limit=batch_size, failed=failed)
        done += processed
        if last is None:
            if after == 0 and read_at >= settled:
                return done
            after = 0  # read again from the start: a text committed late may have a lower id
            if read_at < settled:
                time.sleep(min(pause_seconds, settled - read_at))
            continue
        after = last
        if time.monotonic() > deadline:
            inbound_nudge(memo=False)
            return done
        if processed < batch_size:
            time.sleep(pause_seconds)
