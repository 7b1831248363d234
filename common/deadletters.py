"""Poison tasks: a lost worker never drops a task's message, and a message that keeps killing workers stops.

Every task of the app is a :class:`DeadLetteringTask` (``civicdesk/celery.py`` makes it the app's task class).
For a task with ``acks_late`` (it is idempotent, so running it again is safe), two rules hold:

- **A lost worker never drops the message.** ``reject_on_worker_lost``: when the pool process running the
  task dies (killed for memory, a crash, SIGKILL), Celery requeues its message at once instead of
  acknowledging it. When the whole worker dies, the message was never acknowledged, and the Redis transport
  restores it after the broker's ``visibility_timeout`` (or when another worker restores unacked messages).
- **A message that keeps killing workers is dead-lettered, not looped.** Before the task body runs, this
  start is counted in Redis (``HINCRBY`` with an expiry, under the task id and ``request.retries``:
  ``self.retry`` publishes the same id with ``retries`` + 1, a new message with its own count). Once a
  message has been started more than ``CELERY_TASK_MAX_DELIVERIES`` times, its body is not run again: a
  :class:`common.models.DeadLetter` row and an ERROR log line record it, and the message is acknowledged.
  So the body runs at most ``CELERY_TASK_MAX_DELIVERIES`` times, and the row's ``deliveries`` is that plus
  one (the start that was not run).

The counter never blocks work: if its Redis cannot be reached, the task runs uncounted and a warning is
logged. Tasks without ``acks_late`` are acknowledged before they run, so a lost worker drops them instead
of looping (their work is recorded in PostgreSQL and the sweepers start it again); they are not counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from billiard.exceptions import WorkerLostError
from celery import Task
from celery.worker.request import Request
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from common.queueing import cache_redis_client

logger = logging.getLogger(__name__)

# Exceptions the worker's main process sees when the pool process running a task is gone.
_LOST_WORKER = (WorkerLostError, SystemExit, KeyboardInterrupt)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the counter knows about one message: how many times it was started, since when, how it died."""

    count: int
    first_seen_at: datetime
    last_error: str


def deliveries_key(*, task_id: str, retries: int) -> str:
    """The counter's key (before the cache's prefix): one per message, and a retry is a new message."""
    return f"task-deliveries:{task_id}:{retries}"


def delivery_count(*, task_id: str, retries: int, now: datetime) -> Delivery | None:
    """Count one start of this message and return its totals; None (logged) if Redis could not be reached.

    One round trip: ``HINCRBY count``, ``HSETNX first``, ``EXPIRE`` and ``HGETALL`` in one MULTI. The expiry
    (``CELERY_TASK_DELIVERY_COUNT_SECONDS``) is renewed at every start; it must outlast the broker's
    ``visibility_timeout``, after which a message whose whole worker died comes back.
    """
    client = cache_redis_client()
    if client is None:  # the default cache is not Redis: there is nowhere shared to count
        logger.warning("task deliveries are not counted: the default cache is not Redis")
        return None
    key = cache.make_key(deliveries_key(task_id=task_id, retries=retries))
    try:
        pipe = client.pipeline()
        pipe.hincrby(key, "count", 1)
        pipe.hsetnx(key, "first", now.isoformat())
        pipe.expire(key, settings.CELERY_TASK_DELIVERY_COUNT_SECONDS)
        pipe.hgetall(key)
        fields: dict[bytes, bytes] = pipe.execute()[-1]
    except Exception:
        logger.warning("could not count a start of task %s; running it uncounted", task_id, exc_info=True)
        return None
    first = fields.get(b"first")
    return Delivery(
        count=int(fields[b"count"]),
        first_seen_at=datetime.fromisoformat(first.decode()) if first else now,
        last_error=fields.get(b"error", b"").decode(errors="replace"),
    )


def worker_lost_note(*, task_id: str, retries: int, error: str) -> None:
    """Remember how this message's worker was lost, for its dead letter. Never raises."""
    client = cache_redis_client()
    if client is None:
        return
    key = cache.make_key(deliveries_key(task_id=task_id, retries=retries))
    try:
        pipe = client.pipeline()
        pipe.hset(key, "error", error)
        pipe.expire(key, settings.CELERY_TASK_DELIVERY_COUNT_SECONDS)
        pipe.execute()
    except Exception:
        logger.warning("could not note how the worker of task %s was lost", task_id, exc_info=True)


def dead_letter_record(
    *,
    task_name: str,
    task_id: str,
    retries: int,
    args: Any,
    kwargs: Any,
    delivery: Delivery,
    now: datetime,
) -> None:
    """Log the dead letter at ERROR, then write (or update) its row. Never raises: the log line stands alone
    if PostgreSQL cannot be written, and the message is acknowledged either way (running it again is what
    kills workers)."""
    from common.models import DeadLetter  # Celery loads this module with the app, before the app registry

    logger.error(
        "dead letter: task %s[%s] (retry %d) was delivered %d times, more than CELERY_TASK_MAX_DELIVERIES"
        " (%d), and is not run again; args=%r kwargs=%r; last error: %s",
        task_name,
        task_id,
        retries,
        delivery.count,
        settings.CELERY_TASK_MAX_DELIVERIES,
        args,
        kwargs,
        delivery.last_error or "unknown",
    )
    try:
        DeadLetter.objects.update_or_create(
            task_id=task_id,
            retries=retries,
            defaults={
                "task_name": task_name,
                "args": list(args or ()),
                "kwargs": dict(kwargs or {}),
                "deliveries": delivery.count,
                "last_seen_at": now,
                "last_error": delivery.last_error,
            },
            create_defaults={
                "task_name": task_name,
                "args": list(args or ()),
                "kwargs": dict(kwargs or {}),
                "deliveries": delivery.count,
                "first_seen_at": delivery.first_seen_at,
                "last_seen_at": now,
                "last_error": delivery.last_error,
            },
        )
    except Exception:
        logger.exception("could not store the dead letter of task %s[%s]", task_name, task_id)


def dead_lettered_ids(*, task_name: str, now: datetime) -> set[int]:
    """The first arguments (ids) of ``task_name``'s messages dead-lettered within the last
    ``CELERY_TASK_DELIVERY_COUNT_SECONDS``: a sweeper must not enqueue them again until then.

    A sweeper publishes a new message (a new task id, counted from zero) for work it finds unfinished, so
    without this a task that kills its worker would be started ``CELERY_TASK_MAX_DELIVERIES`` more times at
    every sweep. With it, at most that many times per ``CELERY_TASK_DELIVERY_COUNT_SECONDS``.
    """
    from common.models import DeadLetter  # Celery loads this module with the app, before the app registry

    since = now - timedelta(seconds=settings.CELERY_TASK_DELIVERY_COUNT_SECONDS)
    rows = DeadLetter.objects.filter(task_name=task_name, last_seen_at__gte=since).values_list(
        "args", flat=True
    )
    return {int(args[0]) for args in rows if args and isinstance(args[0], int)}


class DeliveryRequest(Request):
    """The worker's request for a :class:`DeadLetteringTask`: notes how a lost pool process died.

    Runs in the worker's main process, which sees the pool process go; the note becomes the dead letter's
    ``last_error`` if the message is dead-lettered later.
    """

    def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> None:
        exc = getattr(exc_info, "exception", None)
        exc = getattr(exc, "exc", exc)  # billiard wraps it in ExceptionWithTraceback
        if isinstance(exc, _LOST_WORKER) and self.task.acks_late:
            worker_lost_note(
                task_id=self.id,
                retries=int(self.request_dict.get("retries") or 0),
                error=f"{type(exc).__name__}: {exc}",
            )
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


class DeadLetteringTask(Task[..., Any]):
    """The app's task class: an ``acks_late`` task is requeued when its worker is lost, and its message is
    dead-lettered instead of run once it has been started more than ``CELERY_TASK_MAX_DELIVERIES`` times."""

    reject_on_worker_lost = True
    Request = "common.deadletters:DeliveryRequest"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        if request.called_directly:  # a plain function call, not a delivery
            return super().__call__(*args, **kwargs)
        # From here on Celery's tracer has pushed the delivery's request; run the body as Task.__call__ would
        # without pushing a second, empty one.
        if self.acks_late and not request.is_eager and self._dead_letter_instead(request, args, kwargs):
            return None
        return self.run(*args, **kwargs)

    def _dead_letter_instead(self, request: Any, args: Any, kwargs: Any) -> bool:
        """Count this start; True (and the dead letter recorded) if the body must not run."""
        now = timezone.now()
        retries = int(request.retries or 0)
        delivery = delivery_count(task_id=request.id, retries=retries, now=now)
        if delivery is None or delivery.count <= settings.CELERY_TASK_MAX_DELIVERIES:
            return False
        dead_letter_record(
            task_name=self.name,
            task_id=request.id,
            retries=retries,
            args=args,
            kwargs=kwargs,
            delivery=delivery,
            now=now,
        )
        return True
