"""Celery entry points: ids in, call one service. Each task is idempotent, so acks_late is safe."""

from __future__ import annotations

import random

from celery import Task, shared_task

from messages.services import delivery, inbound_queue, processing, sweeper, triage
from messages.services.media import MediaRetry
from messages.services.media import media_download as media_download_service
from messages.twilio.errors import RetryableSendError

# Retries back off exponentially with full jitter, capped well under the broker visibility timeout (1 h).
MAX_DELIVERY_RETRIES = 6
BACKOFF_CAP_SECONDS = 300


def backoff(retries: int, *, base: float = 2.0) -> float:
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, base * (2**retries)))  # noqa: S311 - jitter, not crypto


@shared_task(acks_late=True, ignore_result=True)
def message_process(message_id: int) -> None:
    processing.inbound_process(message_id=message_id)


@shared_task(acks_late=True, ignore_result=True)
def inbound_drain() -> None:
    inbound_queue.inbound_drain()


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=MAX_DELIVERY_RETRIES)
def message_deliver(self: Task[..., None], message_id: int) -> None:
    try:
        delivery.message_deliver(message_id=message_id)
    except RetryableSendError as exc:
        if self.request.retries >= MAX_DELIVERY_RETRIES:
            delivery.delivery_give_up(message_id=message_id, reason=exc.reason)
            return
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc


@shared_task(acks_late=True, ignore_result=True)
def message_reconcile(message_id: int) -> None:
    delivery.message_reconcile(message_id=message_id)


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=5)
def media_download(self: Task[..., None], media_id: int) -> None:
    try:
        media_download_service(media_id=media_id)
    except MediaRetry as exc:
        # Twilio may 404 a media URL for a moment after the webhook: retry briefly.
        raise self.retry(exc=exc, countdown=1 + self.request.retries * 2) from exc


@shared_task(ignore_result=True)
def sweep() -> None:
    sweeper.sweep()


# --- Inbox: "snooze until" ends by itself (messages.services.triage) ----------------------------------------
# Each batch is one transaction of at most SNOOZE_WAKE_BATCH rows; a run stops after SNOOZE_WAKE_MAX_BATCHES,
# and the next beat tick carries on.
SNOOZE_WAKE_BATCH = 1000
SNOOZE_WAKE_MAX_BATCHES = 20


@shared_task(ignore_result=True)
def snoozed_conversations_wake() -> int:
    """Reopen every office's conversations whose snooze has ended (Celery beat, SNOOZE_WAKE_INTERVAL_SECONDS).

    Safe to overlap or repeat: the service locks due rows with SKIP LOCKED and only changes snoozed ones.
    """
    woken = 0
    for _ in range(SNOOZE_WAKE_MAX_BATCHES):
        batch = triage.snoozed_conversations_wake(limit=SNOOZE_WAKE_BATCH)
        woken += batch
        if batch < SNOOZE_WAKE_BATCH:
            break
    return woken
