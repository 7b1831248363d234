"""Celery entry points of bulk replies: ids in, call one service. Each is safe to run twice or at once.

- ``bulk_reply_prepare`` writes the recipient rows once, then starts the senders.
- ``bulk_reply_send`` is one sender slot for a few seconds; while there is work it hands over to a fresh task
  for the same slot, so a slot is never left idle for long and never doubled (an advisory lock).
- ``bulk_replies_tick`` (Celery beat) starts scheduled bulk replies when their time comes, restarts senders
  (after quiet hours, a backoff, or a lost worker), returns stalled recipients and marks finished ones done.
"""

from __future__ import annotations

from celery import shared_task

from common.queueing import enqueue
from correspondence.models import BulkReply
from correspondence.services import bulk, sending


def _kick(bulk_reply_id: int) -> None:
    office_id = BulkReply.objects.filter(pk=bulk_reply_id).values_list("office_id", flat=True).first()
    if office_id is None:
        return
    rates = bulk.rates_for_office_id(office_id=office_id)
    for slot in range(sending.slot_count(rates=rates)):
        enqueue(bulk_reply_send, bulk_reply_id, slot)


@shared_task(acks_late=True, ignore_result=True)
def bulk_reply_prepare(bulk_reply_id: int) -> None:
    bulk.bulk_reply_prepare(bulk_reply_id=bulk_reply_id)
    _kick(bulk_reply_id)


@shared_task(acks_late=True, ignore_result=True)
def bulk_reply_kick(bulk_reply_id: int) -> None:
    _kick(bulk_reply_id)


@shared_task(acks_late=True, ignore_result=True)
def bulk_reply_send(bulk_reply_id: int, slot: int) -> None:
    report = sending.bulk_reply_send_slice(bulk_reply_id=bulk_reply_id, slot=slot)
    if report.slot_taken and report.stopped == "slice over":
        enqueue(bulk_reply_send, bulk_reply_id, slot)
    elif report.slot_taken and report.stopped == "nothing due":
        sending.bulk_reply_finish_if_done(bulk_reply_id=bulk_reply_id)


@shared_task(ignore_result=True)
def bulk_replies_tick() -> None:
    sending.handed_stale_requeue()
    for bulk_reply_id in sending.due_scheduled_start():
        enqueue(bulk_reply_prepare, bulk_reply_id)
    for bulk_reply_id in sending.sending_ids():
        if not sending.bulk_reply_finish_if_done(bulk_reply_id=bulk_reply_id):
            _kick(bulk_reply_id)
