"""The sweeper: the Celery queue is never the only record of work to do.

Run by Celery beat every SWEEPER_INTERVAL_SECONDS. Finds work whose message was lost (Redis down at commit,
a worker killed) and re-enqueues it. Every task it enqueues is idempotent, so a duplicate is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from common.deadletters import dead_lettered_ids
from common.queueing import enqueue
from messages.models import PACED_BY_KEY, Direction, Media, MediaStatus, Message, MessageStatus
from messages.services.delivery import parked_callbacks_apply, stale_sends_mark_unknown

BATCH = 1000


@dataclass(frozen=True, slots=True)
class SweepReport:
    inbound_requeued: int
    outbound_requeued: int
    marked_unknown: int
    reconciles_queued: int
    media_requeued: int
    callbacks_applied: int


def sweep(*, now: datetime | None = None, stale_after: timedelta | None = None) -> SweepReport:
    """Re-enqueue unfinished work older than ``stale_after`` (default SWEEPER_STALE_AFTER_SECONDS)."""
    from messages import tasks  # tasks import services; keep the import graph one-way at load time

    now = now or timezone.now()
    cutoff = now - (
        stale_after if stale_after is not None else timedelta(seconds=settings.SWEEPER_STALE_AFTER_SECONDS)
    )

    # Inbound texts are processed in batches by one drain, which takes every pending text, stale or not;
    # a dead-lettered one is not pending (messages.services.processing), and must not start a drain at every
    # sweep.
    inbound = Message.objects.filter(
        direction=Direction.INBOUND,
        processed_at__isnull=True,
        created_at__lte=cutoff,
        processing_starts__lte=settings.CELERY_TASK_MAX_DELIVERIES,
    ).count()
    if inbound:
        enqueue(tasks.inbound_drain)

    # A paced message (a bulk reply's) is sent by its pacer, within its number's rate and the recipient's
    # waking hours; the sweeper must not send it around them.
    outbound = list(
        Message.objects.filter(
            direction=Direction.OUTBOUND, status=MessageStatus.QUEUED, status_updated_at__lte=cutoff
        )
        .exclude(details__has_key=PACED_BY_KEY)
        .order_by("created_at")
        .values_list("pk", flat=True)[:BATCH]
    )
    # What was dead-lettered lately (it killed its worker at every start) is not started again yet.
    outbound = _without_dead_letters(outbound, tasks.message_deliver.name, now)
    for pk in outbound:
        enqueue(tasks.message_deliver, pk)

    marked = stale_sends_mark_unknown(now=now)
    unknown = list(
        Message.objects.filter(direction=Direction.OUTBOUND, status=MessageStatus.UNKNOWN)
        .order_by("created_at")
        .values_list("pk", flat=True)[:BATCH]
    )
    unknown = _without_dead_letters(unknown, tasks.message_reconcile.name, now)
    for pk in unknown:
        enqueue(tasks.message_reconcile, pk)

    media = list(
        Media.objects.filter(
            status=MediaStatus.PENDING, created_at__lte=cutoff, message__processed_at__isnull=False
        ).values_list("pk", flat=True)[:BATCH]
    )
    media = _without_dead_letters(media, tasks.media_download.name, now)
    for pk in media:
        enqueue(tasks.media_download, pk)

    applied = parked_callbacks_apply()
    return SweepReport(inbound, len(outbound), marked, len(unknown), len(media), applied)


def _without_dead_letters(pks: list[int], task_name: str, now: datetime) -> list[int]:
    if not pks:
        return pks
    dead = dead_lettered_ids(task_name=task_name, now=now)
    return [pk for pk in pks if pk not in dead]
