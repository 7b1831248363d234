"""Enqueue Celery work without ever failing the caller.

Work is recorded in PostgreSQL first; the queue only speeds it up. If Redis is down at commit time, the
sweeper (Celery beat) finds the pending rows and re-enqueues them, so a failed publish is logged, not raised.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue(task: Task, *args: Any, countdown: float | None = None) -> bool:
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


def enqueue_on_commit(task: Task, *args: Any, countdown: float | None = None) -> None:
    """Publish after the current transaction commits (immediately if there is none)."""
    transaction.on_commit(lambda: enqueue(task, *args, countdown=countdown))
