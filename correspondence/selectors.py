"""Reading form letters and bulk replies: the library, progress, the final report.

Every query takes the office."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from correspondence.models import (
    BulkRecipient,
    BulkReply,
    BulkStatus,
    FormLetter,
    FormLetterVersion,
    RecipientState,
    SkipReason,
)
from correspondence.services.bulk import correspondence_settings_for, quiet_hours, rates_for
from messages.models import MessageStatus
from offices.models import Office

RATE_WINDOW = timedelta(seconds=60)


def letters(*, office: Office, include_retired: bool = False) -> QuerySet[FormLetter]:
    qs = FormLetter.objects.filter(office=office).select_related("approved_version").prefetch_related("tags")
    if not include_retired:
        qs = qs.filter(retired_at__isnull=True)
    return qs.order_by("-updated_at", "-id")


def approved_letters(*, office: Office) -> QuerySet[FormLetter]:
    return letters(office=office).filter(approved_version__isnull=False).order_by("name")


def letter_versions(*, office: Office, letter: FormLetter) -> QuerySet[FormLetterVersion]:
    return FormLetterVersion.objects.filter(office=office, letter=letter).select_related(
        "created_by", "approved_by", "approval_requested_by"
    )


def bulk_replies(*, office: Office) -> QuerySet[BulkReply]:
    return (
        BulkReply.objects.filter(office=office)
        .select_related("letter_version__letter", "created_by")
        .order_by("-created_at", "-id")
    )


# The progress page's states, in the order shown.
PROGRESS_STATES = ("queued", "deferred", "sending", "sent", "delivered", "failed", "skipped", "cancelled")
FINAL_STATES = ("sent", "delivered", "failed", "skipped", "cancelled")
_BY_MESSAGE_STATUS: dict[str, str] = {
    MessageStatus.QUEUED: "sending",
    MessageStatus.SENDING: "sending",
    MessageStatus.UNKNOWN: "sending",
    MessageStatus.SENT: "sent",
    MessageStatus.DELIVERED: "delivered",
    MessageStatus.READ: "delivered",
    MessageStatus.UNDELIVERED: "failed",
    MessageStatus.FAILED: "failed",
    MessageStatus.CANCELED: "cancelled",
}


@dataclass(slots=True)
class Progress:
    status: str
    prepared: bool
    counts: dict[str, int]
    failures: list[tuple[str, int]]
    skips: list[tuple[str, str, int]]
    deferred_until: list[tuple[str, int, datetime]]
    total: int
    rate_per_minute: float
    segments_left: int
    finish_at: datetime | None
    done: bool
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        return sum(self.counts[state] for state in FINAL_STATES)

    @property
    def percent(self) -> int:
        return int(100 * self.finished / self.total) if self.total else (100 if self.done else 0)


def bulk_reply_progress(*, office: Office, bulk: BulkReply, now: datetime | None = None) -> Progress:
    """Counts by state (queued, held for quiet hours, sending, sent, delivered, failed, skipped, cancelled),
    failure and skip reasons, the achieved rate over the last minute and the estimated finish."""
    now = now or timezone.now()
    if bulk.office_id != office.pk:
        raise ValueError("a bulk reply is read with its own office")
    recipients = BulkRecipient.objects.filter(office=office, bulk_reply=bulk)
    counts = dict.fromkeys(PROGRESS_STATES, 0)
    hours = quiet_hours(correspondence_settings_for(office=office))
    deferred: list[tuple[str, int, datetime]] = []
    segments_left = 0
    for zone, n, later, segs in (
        recipients.filter(state=RecipientState.PENDING)
        .order_by()
        .values("time_zone")
        .annotate(n=Count("pk"), later=Count("pk", filter=Q(not_before__gt=now)), segs=Sum("segments"))
        .values_list("time_zone", "n", "later", "segs")
    ):
        segments_left += segs or 0
        if hours.is_quiet(now, zone):
            counts["deferred"] += n
            deferred.append((zone, n, hours.next_allowed(now, zone)))
        else:
            counts["deferred"] += later
            counts["queued"] += n - later
    for status, accepted, n in (
        recipients.filter(state=RecipientState.HANDED)
        .order_by()
        .values("message__status")
        .annotate(accepted=Count("pk", filter=Q(message__provider_sid__isnull=False)), n=Count("pk"))
        .values_list("message__status", "accepted", "n")
    ):
        if status == MessageStatus.SENDING:  # accepted by Twilio (it holds a SID): sent, as far as we know
            counts["sent"] += accepted
            counts["sending"] += n - accepted
        else:
            counts[_BY_MESSAGE_STATUS.get(status, "sending")] += n
    skips = []
    for state, reason, n in (
        recipients.filter(state__in=[RecipientState.SKIPPED, RecipientState.CANCELLED])
        .order_by()
        .values("state", "skip_reason")
        .annotate(n=Count("pk"))
        .values_list("state", "skip_reason", "n")
    ):
        counts["skipped" if state == RecipientState.SKIPPED else "cancelled"] += n
        if reason:
            skips.append((reason, SkipReason(reason).label, n))
    failures = list(
        recipients.filter(
            state=RecipientState.HANDED,
            message__status__in=[MessageStatus.FAILED, MessageStatus.UNDELIVERED],
        )
        .order_by()
        .values("message__error_message")
        .annotate(n=Count("pk"))
        .order_by("-n")
        .values_list("message__error_message", "n")[:10]
    )
    recent = recipients.filter(
        state=RecipientState.HANDED, message__sent_at__gte=now - RATE_WINDOW
    ).aggregate(n=Count("pk"), segs=Sum("segments"))
    rate_per_minute = float(recent["n"] or 0) * 60 / RATE_WINDOW.total_seconds()
    segment_rate = float(recent["segs"] or 0) / RATE_WINDOW.total_seconds()
    if not segment_rate and segments_left:
        segment_rate = max(rates_for(office=office).values(), default=1.0)
    finish_at = (
        now + timedelta(seconds=segments_left / segment_rate) if segments_left and segment_rate else None
    )
    total = sum(counts.values())
    return Progress(
        status=bulk.status,
        prepared=bulk.prepared_at is not None,
        counts=counts,
        failures=[(reason or "Failed", n) for reason, n in failures],
        skips=sorted(skips, key=lambda s: -s[2]),
        deferred_until=sorted(deferred, key=lambda d: d[2]),
        total=total,
        rate_per_minute=rate_per_minute,
        segments_left=segments_left,
        finish_at=finish_at if bulk.status in (BulkStatus.SENDING, BulkStatus.SCHEDULED) else None,
        done=bulk.status == BulkStatus.DONE,
    )


@dataclass(frozen=True, slots=True)
class ReportRow:
    name: str
    phone: str
    conversation_id: int
    state: str
    reason: str
    sent_at: datetime | None
    time_zone: str
    body: str


def report_rows(*, office: Office, bulk: BulkReply) -> Iterator[ReportRow]:
    """One row per recipient, for the final report and its CSV, streamed in id order."""
    rows = (
        BulkRecipient.objects.filter(office=office, bulk_reply=bulk)
        .order_by("pk")
        .values_list(
            "constituent__first_name",
            "constituent__last_name",
            "constituent__phone",
            "conversation_id",
            "state",
            "skip_reason",
            "message__status",
            "message__provider_sid",
            "message__error_message",
            "message__sent_at",
            "time_zone",
            "body",
        )
    )
    for (
        first,
        last,
        phone,
        conversation_id,
        state,
        skip,
        status,
        sid,
        error,
        sent_at,
        zone,
        body,
    ) in rows.iterator(chunk_size=2000):
        if state == RecipientState.HANDED:
            shown = (
                "sent"
                if status == MessageStatus.SENDING and sid
                else _BY_MESSAGE_STATUS.get(status, "sending")
            )
            reason = error if shown in ("failed", "cancelled") else ""
        elif state == RecipientState.SKIPPED:
            shown, reason = "skipped", SkipReason(skip).label if skip else ""
        elif state == RecipientState.CANCELLED:
            shown, reason = "cancelled", "Cancelled before it was sent"
        else:
            shown, reason = "queued", ""
        yield ReportRow(f"{first} {last}".strip(), phone, conversation_id, shown, reason, sent_at, zone, body)
