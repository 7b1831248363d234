"""Celery entry points: ids in, call one service. Each task is idempotent, so acks_late is safe."""

from __future__ import annotations

import random

from celery import Task, shared_task
from django.conf import settings

from messages.services import delivery, inbound_queue, processing, sweeper, triage
from messages.services.media import MediaRetry
from messages.services.media import media_download as media_download_service
from messages.twilio.errors import RetryableSendError

# Every retry's countdown is a named function of the task's retry number (below), so a test can compute each
# one at every retry and check that none reaches the broker's visibility timeout (1 h): a countdown longer
# than that would have Redis re-deliver the waiting task, which would then run twice.
MAX_DELIVERY_RETRIES = 6
BACKOFF_CAP_SECONDS = 300


def backoff(retries: int, *, base: float, spread: float | None = None) -> float:
    """Exponential backoff with "equal jitter": between half and all of ``min(cap, base * 2**retries)``.

    The fixed half makes each retry wait at least as long as the one before could have (a storm of 429s is
    never answered with an immediate retry); the random half spreads many tasks' retries apart. ``spread``
    (0..1) picks the point in the random half; ``None`` draws it at random.
    """
    ceiling = min(float(BACKOFF_CAP_SECONDS), base * 2.0**retries)
    fraction = random.random() if spread is None else spread  # noqa: S311 - jitter, not crypto
    return ceiling / 2 + fraction * ceiling / 2


def delivery_retry_countdown(retries: int, *, spread: float | None = None) -> float:
    """Seconds before a send's retry number ``retries`` + 1 (base: DELIVERY_RETRY_BACKOFF_BASE_SECONDS)."""
    return backoff(retries, base=float(settings.DELIVERY_RETRY_BACKOFF_BASE_SECONDS), spread=spread)


def media_retry_countdown(retries: int) -> float:
    """Seconds before a media download's retry number ``retries`` + 1: soon, then a little later each time.

    Twilio may 404 a media URL for a moment after the webhook. With the default DOWNLOAD_RETRY_BASE_SECONDS
    of 2: 1, 3, 5, 7 s. At most BACKOFF_CAP_SECONDS, whatever the setting.
    """
    base = float(settings.DOWNLOAD_RETRY_BASE_SECONDS)
    return min(float(BACKOFF_CAP_SECONDS), base / 2 + retries * base)


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
            delivery.delivery_give_up(
                message_id=message_id, reason=exc.reason, attempts=self.request.retries + 1
            )
            return
        raise self.retry(exc=exc, countdown=delivery_retry_countdown(self.request.retries)) from exc


@shared_task(acks_late=True, ignore_result=True)
def message_reconcile(message_id: int) -> None:
    delivery.message_reconcile(message_id=message_id)


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=5)
def media_download(self: Task[..., None], media_id: int) -> None:
    try:
        media_download_service(media_id=media_id)
    except MediaRetry as exc:
        # Twilio may 404 a media URL for a moment after the webhook: retry briefly. The service counts the
        # tries in the row and marks the media failed at its MAX_ATTEMPTS, before max_retries runs out.
        raise self.retry(exc=exc, countdown=media_retry_countdown(self.request.retries)) from exc


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
