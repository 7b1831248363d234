"""Sending a bulk reply: paced per sending number, exactly once, never after STOP, never in quiet hours.

A sender is a worker task that works one *slot* of one bulk reply for a few seconds (``SLICE_SECONDS``) and
then hands over to a fresh task, so pause and cancel are seen within a second and a dead worker loses only
the text it held. A slot is a PostgreSQL advisory lock held by the sender's connection: a bulk reply has at
most ``slots`` senders at once however often its tasks are duplicated, and a killed worker's slot is free as
soon as its connection closes.

Each text goes through these steps:
1. **Claim** (one transaction): the next pending recipient whose local time is outside quiet hours and whose
   ``not_before`` has passed, with ``FOR UPDATE SKIP LOCKED``. A recipient who has opted out since the
   preparation is skipped. Otherwise its ``Message`` is written (``queued``, in their conversation's
   timeline), unless a retry already wrote it, and the recipient becomes ``handed``.
2. **Pace:** wait for the sending number's rate limiter (correspondence.pacing), shared by every process.
3. **Deliver** with the messages app's state machine (``message_deliver``): it claims the queued message with
   ``SKIP LOCKED``, checks the opt-out once more, and marks it ``sending`` before calling Twilio. An outcome
   it cannot know becomes ``unknown`` and is reconciled, never resent.

A worker killed between 1 and 3 leaves a queued message and a handed recipient; ``handed_stale_requeue``
puts such recipients back to pending after ``HANDED_STALE_AFTER`` (the message is still queued, so it was
never sent). Twilio 429s and 5xx put the recipient back with a backoff and slow the whole number down; a
permanent error fails that recipient's message with its reason (21610 also records the opt-out), and the
bulk reply goes on.
"""

from __future__ import annotations

import logging
import math
import random
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from common.queueing import cache_redis_client
from correspondence import pacing
from correspondence.models import BulkRecipient, BulkReply, BulkStatus, RecipientState, SkipReason
from correspondence.services.bulk import (
    CANCELLED_REASON,
    correspondence_settings_for,
    quiet_hours,
    rates_for,
)
from messages.models import PACED_BY_KEY, Channel, Conversation, Direction, Message, MessageStatus
from messages.services import delivery
from messages.services.replies import OPTED_OUT_REASON
from messages.services.threading import conversation_touch
from messages.twilio.errors import RetryableSendError
from offices.models import OfficePhoneNumber
from offices.selectors import office_phone_numbers

logger = logging.getLogger(__name__)

SLICE_SECONDS = 10.0
# How often a sender re-reads its bulk reply's status (pause and cancel take effect within this).
STATUS_EVERY_SECONDS = 0.5
# How often a sender re-reads which recipients' time zones are outside quiet hours.
ZONES_EVERY_SECONDS = 30.0
HANDED_STALE_AFTER = timedelta(minutes=2)
HTTP_TOO_MANY_REQUESTS = 429
TWILIO_TOO_MANY_REQUESTS = 20429
_LOCK_NAMESPACE = zlib.crc32(b"civicdesk.bulk-reply-slot") & 0x7FFFFFFF


def slot_count(*, rates: dict[str, float]) -> int:
    """How many senders a bulk reply gets: enough to keep the numbers' rates busy at Twilio's latency."""
    total = sum(rates.values()) or 1.0
    wanted = 1 + int(total * settings.BULK_SEND_SECONDS_PER_REQUEST)
    return max(1, min(int(settings.BULK_SEND_MAX_SLOTS), wanted))


@dataclass(slots=True)
class SliceReport:
    slot_taken: bool = False
    sent: int = 0
    skipped: int = 0
    retried: int = 0
    stopped: str = ""
    handed: list[int] = field(default_factory=list)


def _try_slot(bulk_reply_id: int, slot: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, bulk_reply_id * 64 + slot])
        row = cursor.fetchone()
    return bool(row and row[0])


def _release_slot(bulk_reply_id: int, slot: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_NAMESPACE, bulk_reply_id * 64 + slot])


def _pacer() -> pacing.Pacer | None:
    client = cache_redis_client()
    return pacing.Pacer(client) if client is not None else None


def allowed_zones(*, bulk: BulkReply, at: datetime) -> list[str]:
    """The pending recipients' time zones that are outside quiet hours now."""
    hours = quiet_hours(correspondence_settings_for(office=bulk.office))
    zones = (
        BulkRecipient.objects.filter(bulk_reply_id=bulk.pk, state=RecipientState.PENDING)
        .order_by()
        .values_list("time_zone", flat=True)
        .distinct()
    )
    return [zone for zone in zones if not hours.is_quiet(at, zone)]


@dataclass(frozen=True, slots=True)
class _Claimed:
    recipient_id: int
    message_id: int
    from_number: str
    segments: int
    bulk_reply_id: int


# Most recipients one claim takes: enough for about STATUS_EVERY_SECONDS of the sender's share of the rate,
# so a fast number pays one claim transaction per few texts, and a slow one claims a text at a time.
CLAIM_BATCH_MAX = 10


def claim_batch_size(*, rates: dict[str, float]) -> int:
    share = sum(rates.values()) * STATUS_EVERY_SECONDS / slot_count(rates=rates)
    return max(1, min(CLAIM_BATCH_MAX, math.ceil(share)))


def _claim(*, bulk: BulkReply, zones: list[str], now: datetime, limit: int) -> tuple[list[_Claimed], int]:
    """The next due recipients (at most ``limit``), handed to delivery, and how many were skipped.

    One transaction: recipients locked with SKIP LOCKED (so two senders never take the same one), each
    opted-out one skipped, and for the others a queued ``Message`` written (unless an earlier try wrote it)
    and the recipient marked handed. Returns ([], 0) when nothing is due."""
    with transaction.atomic():
        recipients = list(
            BulkRecipient.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("constituent")
            .filter(bulk_reply_id=bulk.pk, state=RecipientState.PENDING, time_zone__in=zones)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
            .order_by("time_zone", "id")[:limit]
        )
        opted_out = [r for r in recipients if r.constituent.is_opted_out]
        if opted_out:
            _skip_opted_out(opted_out, now=now)
        handed = [r for r in recipients if not r.constituent.is_opted_out]
        fresh = [r for r in handed if r.message_id is None]
        messages = Message.objects.bulk_create([_message_for(bulk, r, now=now) for r in fresh])
        for recipient, message in zip(fresh, messages, strict=True):
            conversation_touch(conversation=Conversation(pk=recipient.conversation_id), message=message)
            recipient.message_id = message.pk
        for recipient in handed:
            recipient.state = RecipientState.HANDED
            recipient.handed_at = now
            recipient.attempts += 1
        if handed:
            BulkRecipient.objects.bulk_update(handed, ["message", "state", "handed_at", "attempts"])
    claimed = [
        _Claimed(r.pk, r.message_id, r.from_number, r.segments, bulk.pk)
        for r in handed
        if r.message_id is not None
    ]
    return claimed, len(opted_out)


def _skip_opted_out(recipients: list[BulkRecipient], *, now: datetime) -> None:
    BulkRecipient.objects.filter(pk__in=[r.pk for r in recipients]).update(
        state=RecipientState.SKIPPED, skip_reason=SkipReason.OPTED_OUT
    )
    written = [r.message_id for r in recipients if r.message_id is not None]
    if written:
        # A text an earlier try wrote (then paused or retried) would otherwise stay queued for ever: no
        # sender takes a skipped recipient, and the sweeper leaves paced texts to their pacer.
        Message.objects.filter(pk__in=written, status=MessageStatus.QUEUED).update(
            status=MessageStatus.FAILED,
            error_code=delivery.OPTED_OUT_ERROR,
            error_message=OPTED_OUT_REASON,
            status_updated_at=now,
        )


def _message_for(bulk: BulkReply, recipient: BulkRecipient, *, now: datetime) -> Message:
    return Message(
        office_id=recipient.office_id,
        conversation_id=recipient.conversation_id,
        direction=Direction.OUTBOUND,
        channel=Channel.SMS,
        body=recipient.body,
        status=MessageStatus.QUEUED,
        from_number=recipient.from_number,
        to_number=recipient.constituent.phone,
        sent_by_id=bulk.started_by_id or bulk.created_by_id,
        idempotency_key=f"bulk:{bulk.pk}:{recipient.constituent_id}",
        num_segments=recipient.segments,
        details={PACED_BY_KEY: f"bulk-reply:{bulk.pk}"},
        created_at=now,
        status_updated_at=now,
    )


def _status(bulk_reply_id: int) -> str:
    return BulkReply.objects.filter(pk=bulk_reply_id).values_list("status", flat=True).first() or ""


def _back_to_pending(claimed: _Claimed, *, not_before: datetime | None) -> None:
    """A handed text that was not sent (paused, slice over, retry later): its recipient waits again.

    If the bulk reply was cancelled meanwhile, the text is cancelled instead and the recipient stays handed,
    as the cancel leaves every handed text that had not left: a pending recipient would outlive the cancel.
    The bulk reply's row lock orders this against the cancel, which holds it while it cancels."""
    with transaction.atomic():
        status = (
            BulkReply.objects.select_for_update()
            .filter(pk=claimed.bulk_reply_id)
            .values_list("status", flat=True)
            .first()
        )
        if status == BulkStatus.CANCELLED:
            Message.objects.filter(pk=claimed.message_id, status=MessageStatus.QUEUED).update(
                status=MessageStatus.CANCELED,
                error_message=CANCELLED_REASON,
                status_updated_at=timezone.now(),
            )
            return
        BulkRecipient.objects.filter(pk=claimed.recipient_id, state=RecipientState.HANDED).update(
            state=RecipientState.PENDING, not_before=not_before
        )


def bulk_reply_send_slice(
    *,
    bulk_reply_id: int,
    slot: int,
    seconds: float = SLICE_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    wall: Callable[[], datetime] = timezone.now,
) -> SliceReport:
    """Send this bulk reply's due texts for about ``seconds``, as sender ``slot``. Safe to run duplicated.

    ``wall`` is the time of day that quiet hours and ``not_before`` are read against."""
    report = SliceReport()
    bulk = BulkReply.objects.select_related("office").filter(pk=bulk_reply_id).first()
    if bulk is None or bulk.status != BulkStatus.SENDING or bulk.prepared_at is None:
        report.stopped = "not sending"
        return report
    if not _try_slot(bulk.pk, slot):
        report.stopped = "slot busy"
        return report
    report.slot_taken = True
    try:
        _send_for(bulk, report, deadline=clock() + seconds, clock=clock, sleep=sleep, wall=wall)
    finally:
        _release_slot(bulk.pk, slot)
    return report


def _send_for(
    bulk: BulkReply,
    report: SliceReport,
    *,
    deadline: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    wall: Callable[[], datetime],
) -> None:
    pacer = _pacer()
    if pacer is None:
        report.stopped = "no Redis cache for the rate limiter"
        return
    rates = rates_for(office=bulk.office)
    # The slice's sending numbers, read once: delivery would otherwise look its number up for every text.
    senders = {number.e164: number for number in office_phone_numbers(office=bulk.office)}
    watch = _StatusWatch(bulk.pk, clock)
    zones = _ZoneWatch(bulk, clock, wall)
    batch = claim_batch_size(rates=rates)
    held: deque[_Claimed] = deque()
    try:
        while clock() < deadline:
            if watch.stopped():
                report.stopped = "paused or cancelled"
                return
            if not held:
                claimed, skipped = _claim(bulk=bulk, zones=zones.allowed(), now=wall(), limit=batch)
                report.skipped += skipped
                if not claimed and not skipped:
                    report.stopped = "nothing due"
                    return
                held.extend(claimed)
                continue
            text = held[0]
            rate = rates.get(text.from_number, 1.0)
            if not pacer.wait(
                text.from_number, cost=text.segments, rate=rate, deadline=deadline, sleep=sleep
            ):
                report.stopped = "slice over"
                return
            # The wait may have been long enough for a pause or cancel to have come in meanwhile.
            if watch.stopped():
                report.stopped = "paused or cancelled"
                return
            held.popleft()
            report.handed.append(text.message_id)
            _deliver(text, pacer, report, rate=rate, sender=senders.get(text.from_number))
        report.stopped = "slice over"
    finally:
        # Texts claimed but not sent (paused, slice over, an error): their messages are still queued, and
        # the next sender (or resume) takes their recipients.
        for text in held:
            _back_to_pending(text, not_before=None)


@dataclass(slots=True)
class _StatusWatch:
    """Re-reads the bulk reply's status at most every STATUS_EVERY_SECONDS."""

    bulk_reply_id: int
    clock: Callable[[], float]
    at: float = -1e9

    def stopped(self) -> bool:
        if self.clock() - self.at < STATUS_EVERY_SECONDS:
            return False
        self.at = self.clock()
        return _status(self.bulk_reply_id) != BulkStatus.SENDING


@dataclass(slots=True)
class _ZoneWatch:
    """The pending recipients' time zones outside quiet hours, re-read every ZONES_EVERY_SECONDS."""

    bulk: BulkReply
    clock: Callable[[], float]
    wall: Callable[[], datetime]
    at: float = -1e9
    zones: list[str] = field(default_factory=list)

    def allowed(self) -> list[str]:
        if self.clock() - self.at >= ZONES_EVERY_SECONDS:
            self.zones = allowed_zones(bulk=self.bulk, at=self.wall())
            self.at = self.clock()
        return self.zones


def _deliver(
    claimed: _Claimed,
    pacer: pacing.Pacer,
    report: SliceReport,
    *,
    rate: float,
    sender: OfficePhoneNumber | None,
) -> None:
    try:
        outcome = delivery.message_deliver(message_id=claimed.message_id, sender=sender)
    except RetryableSendError as exc:
        attempts = (
            BulkRecipient.objects.filter(pk=claimed.recipient_id).values_list("attempts", flat=True).get()
        )
        if exc.http_status == HTTP_TOO_MANY_REQUESTS or exc.code == TWILIO_TOO_MANY_REQUESTS:
            jitter = 0.5 + random.random()  # noqa: S311 - jitter, not crypto
            pacer.throttled(claimed.from_number, cost=claimed.segments, rate=rate, jitter=jitter)
        if attempts > settings.BULK_SEND_MAX_RETRIES:
            delivery.delivery_give_up(message_id=claimed.message_id, reason=exc.reason, attempts=attempts)
            return
        countdown = retry_countdown(attempts)
        _back_to_pending(claimed, not_before=timezone.now() + timedelta(seconds=countdown))
        report.retried += 1
        return
    if outcome.sent:
        report.sent += 1


def retry_countdown(attempts: int) -> float:
    """Seconds before a recipient's next try after ``attempts`` tries: doubling, with equal jitter, capped."""
    ceiling = min(300.0, float(settings.DELIVERY_RETRY_BACKOFF_BASE_SECONDS) * 2 ** max(0, attempts - 1))
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))  # noqa: S311 - jitter, not crypto


def handed_stale_requeue(*, now: datetime | None = None) -> int:
    """Recipients handed to delivery whose message never left ``queued`` (the sender died): pending again."""
    now = now or timezone.now()
    stale = BulkRecipient.objects.filter(
        state=RecipientState.HANDED,
        handed_at__lt=now - HANDED_STALE_AFTER,
        message__status=MessageStatus.QUEUED,
        bulk_reply__status__in=[BulkStatus.SENDING, BulkStatus.PAUSED],
    )
    return stale.update(state=RecipientState.PENDING)


FINAL_MESSAGE_STATUSES = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
    MessageStatus.FAILED,
    MessageStatus.READ,
    MessageStatus.CANCELED,
)


def handed_final_q() -> Q:
    """A handed recipient is finished once Twilio has accepted its text (it holds Twilio's SID; delivery
    callbacks may follow, or never come when none are configured) or its message ended without being sent."""
    return Q(message__status__in=FINAL_MESSAGE_STATUSES) | Q(
        message__status=MessageStatus.SENDING, message__provider_sid__isnull=False
    )


def bulk_reply_finish_if_done(*, bulk_reply_id: int) -> bool:
    """Mark the bulk reply done when every recipient is final: skipped, cancelled, or handed with a message
    in a final state. Never while one is pending (queued or held for quiet hours) or being sent."""
    with transaction.atomic():
        bulk = BulkReply.objects.select_for_update().filter(pk=bulk_reply_id).first()
        if bulk is None or bulk.status != BulkStatus.SENDING or bulk.prepared_at is None:
            return False
        unfinished = (
            BulkRecipient.objects.filter(bulk_reply_id=bulk.pk)
            .filter(Q(state=RecipientState.PENDING) | (Q(state=RecipientState.HANDED) & ~handed_final_q()))
            .exists()
        )
        if unfinished:
            return False
        bulk.status = BulkStatus.DONE
        bulk.finished_at = timezone.now()
        bulk.save(update_fields=["status", "finished_at"])
        return True


def due_scheduled_start(*, now: datetime | None = None) -> list[int]:
    """Scheduled bulk replies whose time has come: sending now. Returns their ids."""
    now = now or timezone.now()
    due = list(
        BulkReply.objects.filter(status=BulkStatus.SCHEDULED, send_at__lte=now).values_list("pk", flat=True)
    )
    if due:
        BulkReply.objects.filter(pk__in=due, status=BulkStatus.SCHEDULED).update(status=BulkStatus.SENDING)
    return due


def sending_ids() -> list[int]:
    return list(BulkReply.objects.filter(status=BulkStatus.SENDING).values_list("pk", flat=True))


def next_quiet_end(*, bulk: BulkReply, at: datetime) -> dict[str, datetime]:
    """For each pending time zone in quiet hours now, when its texts go out."""
    hours = quiet_hours(correspondence_settings_for(office=bulk.office))
    zones = (
        BulkRecipient.objects.filter(bulk_reply_id=bulk.pk, state=RecipientState.PENDING)
        .order_by()
        .values_list("time_zone", flat=True)
        .distinct()
    )
    return {zone: hours.next_allowed(at, zone) for zone in zones if hours.is_quiet(at, zone)}
