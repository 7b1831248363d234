"""Bulk replies: choose the audience, preview, start, prepare once, pause, resume, cancel.

The audience is always people who wrote to the office: a selection of conversations, everything matching an
inbox filter, or a tag. One recipient per constituent (their most recent conversation in the audience); the
others are excluded with a reason, in this order: opted out, has not written to the office, no textable
number (no number, or a number that never texted us: a caller's landline or a withheld number), already
received this letter, and (if the staffer asks) replied to by staff since their last message.

Starting writes nothing per recipient in the request: the counts come from one aggregate query, and a worker
prepares the rows (``bulk_reply_prepare``), each with its body rendered and frozen, so what the preview
showed is what is sent. A unique constraint on (bulk reply, constituent) makes a second row impossible, and
preparing twice (a redelivered task) inserts nothing the second time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import phonenumbers
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    Field,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils import timezone

from common.queueing import enqueue_on_commit
from constituents.models import SmsConsent
from correspondence import localtime, merge, pacing
from correspondence.models import (
    BulkRecipient,
    BulkReply,
    BulkStatus,
    CorrespondenceSettings,
    FormLetter,
    FormLetterVersion,
    RecipientState,
    SkipReason,
)
from messages.filters import ConversationFilter
from messages.models import Channel, Conversation, ConversationTag, Direction, Message, MessageStatus, Tag
from messages.segments import MAX_BODY_LENGTH, segment_info
from messages.selectors.inbox import inbox_conversations, inbox_lookups
from messages.services.rules import ForeignObjectNotFound
from offices.models import Office, OfficePhoneNumber

PREPARE_BATCH = 5000
SAMPLE_SIZE = 20
# The body a recipient with none of the merge fields filled would get must still fit in a text.
TEXT_CHANNELS = (Channel.SMS, Channel.MMS)
SENT_STATUSES = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)
# A bulk text that had not left when its bulk reply was cancelled.
CANCELLED_REASON = "Cancelled with its bulk reply before it was sent."


class BulkReplyRejected(Exception):
    """The bulk reply cannot be created or changed; ``reason`` is written for staff."""

    def __init__(self, reason: str, *, field: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class BulkReplyNotFound(BulkReplyRejected, ForeignObjectNotFound):
    """An id of another office (or of nothing) was named: the whole request is a 404."""


# --- Office settings -------------------------------------------------------------------------------------


def correspondence_settings_for(*, office: Office) -> CorrespondenceSettings:
    """The office's settings row, or the defaults (unsaved) if it has none."""
    return CorrespondenceSettings.objects.filter(office=office).first() or CorrespondenceSettings(
        office=office
    )


def segment_price(config: CorrespondenceSettings) -> Decimal:
    price = config.segment_price
    return price if price is not None else Decimal(str(settings.BULK_SEGMENT_PRICE_USD))


def quiet_hours(config: CorrespondenceSettings) -> localtime.QuietHours:
    return localtime.QuietHours(starts=config.quiet_hours_starts, ends=config.quiet_hours_ends)


# --- Audience ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Audience:
    """Exactly one of: conversation ids, inbox filter parameters, a tag id."""

    conversations: tuple[int, ...] | None = None
    filter: Mapping[str, str] | None = None
    tag: int | None = None

    @classmethod
    def from_json(cls, raw: Any) -> Audience:
        if not isinstance(raw, dict) or len(raw) != 1:
            raise BulkReplyRejected(
                'The audience is one of {"conversations": [ids]}, {"filter": {...}} or {"tag": id}.',
                field="audience",
            )
        ((kind, value),) = raw.items()
        if kind == "conversations":
            if not isinstance(value, list) or not value or not all(_is_id(v) for v in value):
                raise BulkReplyRejected("Give the conversations as a list of ids.", field="audience")
            if len(value) > settings.BULK_REPLY_MAX_SELECTED:
                raise BulkReplyRejected(
                    f"Select at most {settings.BULK_REPLY_MAX_SELECTED:,} conversations, or use a filter.",
                    field="audience",
                )
            return cls(conversations=tuple(dict.fromkeys(int(v) for v in value)))
        if kind == "filter":
            if not isinstance(value, dict) or not all(isinstance(v, str | int) for v in value.values()):
                raise BulkReplyRejected("Give the filter as the inbox's parameters.", field="audience")
            return cls(filter={str(k): str(v) for k, v in value.items()})
        if kind == "tag":
            if not _is_id(value):
                raise BulkReplyRejected("Give the tag as an id.", field="audience")
            return cls(tag=int(value))
        raise BulkReplyRejected(f"Unknown audience “{kind}”.", field="audience")

    def as_json(self) -> dict[str, Any]:
        if self.conversations is not None:
            return {"conversations": list(self.conversations)}
        if self.filter is not None:
            return {"filter": dict(self.filter)}
        return {"tag": self.tag}


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


@dataclass(frozen=True, slots=True)
class ResolvedAudience:
    conversations: QuerySet[Conversation]
    label: str


def audience_resolve(
    *, office: Office, audience: Audience, user: AbstractBaseUser | AnonymousUser
) -> ResolvedAudience:
    """The office's conversations the audience names. Another office's ids are a 404 for the whole request."""
    base = Conversation.objects.filter(office=office)
    if audience.conversations is not None:
        ids = list(audience.conversations)
        found = base.filter(pk__in=ids).count()
        if found != len(ids):
            raise BulkReplyNotFound("No such conversation.")
        return ResolvedAudience(
            base.filter(pk__in=ids), f"{len(ids):,} selected conversation{'' if len(ids) == 1 else 's'}"
        )
    if audience.tag is not None:
        tag = Tag.objects.filter(office=office, pk=audience.tag).first()
        if tag is None:
            raise BulkReplyNotFound("No such tag.")
        tagged = ConversationTag.objects.filter(conversation_id=OuterRef("pk"), tag_id=tag.pk)
        return ResolvedAudience(base.filter(Exists(tagged)), f"Tagged “{tag.name}”")
    if audience.filter is None:
        raise BulkReplyRejected("Choose who the bulk reply is for.", field="audience")
    lookups = inbox_lookups(office=office)
    filterset = ConversationFilter(
        dict(audience.filter), inbox_conversations(office=office), office=office, user=user, lookups=lookups
    )
    if not filterset.is_valid():
        errors = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in filterset.errors.items())
        raise BulkReplyRejected(f"The filter is not valid: {errors}", field="audience")
    params = filterset.params
    label = ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "the open inbox"
    return ResolvedAudience(base.filter(pk__in=filterset.qs.values("pk")), f"All matching {label}")


def _candidates(
    *, office: Office, conversations: QuerySet[Conversation], letter_id: int | None, skip_replied: bool
) -> QuerySet[Conversation]:
    """One row per constituent (their latest conversation in the audience), annotated with ``reason``."""
    latest = (
        conversations.order_by("constituent_id", "-last_activity_at", "-id")
        .distinct("constituent_id")
        .values("pk")
    )
    texted = Message.objects.filter(
        conversation_id=OuterRef("pk"), direction=Direction.INBOUND, channel__in=TEXT_CHANNELS
    )
    last_text_to = (
        Message.objects.filter(
            conversation_id=OuterRef("pk"), direction=Direction.INBOUND, channel__in=TEXT_CHANNELS
        )
        .order_by("-created_at")
        .values("to_number")[:1]
    )
    replied = Message.objects.filter(
        conversation_id=OuterRef("pk"),
        direction=Direction.OUTBOUND,
        sent_by__isnull=False,
        created_at__gt=OuterRef("last_inbound_at"),
    )
    reasons = [
        When(constituent__sms_consent=SmsConsent.OPTED_OUT, then=Value(SkipReason.OPTED_OUT)),
        When(last_inbound_at__isnull=True, then=Value(SkipReason.NOT_CONTACTED)),
        When(Q(constituent__phone="") | ~Exists(texted), then=Value(SkipReason.NO_NUMBER)),
    ]
    if letter_id is not None:
        received = BulkRecipient.objects.filter(
            constituent_id=OuterRef("constituent_id"),
            bulk_reply__letter_version__letter_id=letter_id,
            state=RecipientState.HANDED,
            message__status__in=[
                *SENT_STATUSES,
                MessageStatus.QUEUED,
                MessageStatus.SENDING,
                MessageStatus.UNKNOWN,
            ],
        )
        reasons.append(When(Exists(received), then=Value(SkipReason.ALREADY_RECEIVED)))
    if skip_replied:
        reasons.append(When(Exists(replied), then=Value(SkipReason.REPLIED)))
    return (
        Conversation.objects.filter(office=office, pk__in=Subquery(latest))
        .annotate(reason=Case(*reasons, default=Value(""), output_field=CharField()))
        .annotate(last_text_to=Subquery(last_text_to))
    )


# The annotation ``_candidates`` adds (a tuple, so the type checker does not look for a model field).
REASON_FIELD = ("reason",)


@dataclass(frozen=True, slots=True)
class Counts:
    recipients: int
    exclusions: dict[str, int]


def planner_jit_off() -> None:
    """Turn PostgreSQL's JIT compiler off for the rest of this transaction (must be inside one).

    The audience queries aggregate over subqueries whose row counts the planner guesses badly, so their
    estimated cost crosses ``jit_above_cost`` and JIT compiles them: at 100,000 recipients that was 0.6 s
    of a 1.1 s count, for a query that runs once."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")


def _counts(candidates: QuerySet[Conversation]) -> Counts:
    grouped = candidates.order_by().values(*REASON_FIELD).annotate(n=Count("pk"))
    with transaction.atomic():
        planner_jit_off()
        by_reason = Counter({row["reason"]: row["n"] for row in grouped})
    recipients = by_reason.pop("", 0)
    return Counts(recipients=recipients, exclusions={k: v for k, v in by_reason.items() if v})


# --- Rendering ---------------------------------------------------------------------------------------------


def office_merge_values(*, office: Office) -> dict[str, str]:
    """The office's merge fields; the constituent's are added per recipient."""
    number = (
        OfficePhoneNumber.objects.filter(office=office, voice_enabled=True).order_by("pk").first()
        or OfficePhoneNumber.objects.filter(office=office).order_by("pk").first()
    )
    phone = ""
    if number is not None:
        try:
            phone = phonenumbers.format_number(
                phonenumbers.parse(number.e164), phonenumbers.PhoneNumberFormat.NATIONAL
            )
        except phonenumbers.NumberParseException:
            phone = number.e164
    return {
        "official_name": office.official_name,
        "official_title": office.official_title,
        "office_name": office.name,
        "office_phone": phone,
    }


@dataclass(frozen=True, slots=True)
class Rendered:
    body: str
    segments: int
    encoding: str


def render_for(template: merge.Template, values: Mapping[str, str], first: str, last: str) -> Rendered:
    body = template.render({**values, "first_name": first, "last_name": last})
    info = segment_info(body)
    return Rendered(body=body, segments=info.segments, encoding=info.encoding)


def _template(body: str) -> merge.Template:
    if not body.strip():
        raise BulkReplyRejected("Write the text, or choose an approved letter.", field="body")
    try:
        template = merge.parse(body)
    except merge.TemplateError as exc:
        raise BulkReplyRejected(str(exc), field="body") from exc
    return template


# --- Creating and previewing -------------------------------------------------------------------------------


def _body_for(
    *, office: Office, config: CorrespondenceSettings, letter_id: int | None, body: str | None
) -> tuple[FormLetterVersion | None, str]:
    if letter_id is not None:
        letter = (
            FormLetter.objects.filter(office=office, pk=letter_id).select_related("approved_version").first()
        )
        if letter is None:
            raise BulkReplyNotFound("No such letter.")
        if letter.retired_at is not None:
            raise BulkReplyRejected("This letter is retired.", field="letter")
        if letter.approved_version is None:
            raise BulkReplyRejected(
                "This letter has no approved version yet. Ask an approver to approve it.", field="letter"
            )
        return letter.approved_version, letter.approved_version.body
    if config.require_approved_letter:
        raise BulkReplyRejected(
            "This office sends bulk replies only with an approved form letter: choose one.", field="letter"
        )
    if body is None:
        raise BulkReplyRejected("Write the text, or choose an approved letter.", field="body")
    return None, body


def _sender_numbers(office: Office) -> list[OfficePhoneNumber]:
    numbers = list(OfficePhoneNumber.objects.filter(office=office, sms_enabled=True).order_by("pk"))
    if not numbers:
        raise BulkReplyRejected("This office has no number that can send texts. An admin can add one.")
    return numbers


@transaction.atomic
def bulk_reply_create(
    *,
    office: Office,
    actor: AbstractBaseUser,
    audience: Audience,
    letter_id: int | None = None,
    body: str | None = None,
    send_at: datetime | None = None,
    skip_replied: bool = False,
    start: bool = False,
) -> BulkReply:
    """A bulk reply with its counts; started (or scheduled) if ``start``, else a draft to preview.

    Raises BulkReplyNotFound for another office's ids (nothing is created), BulkReplyRejected otherwise.
    """
    config = correspondence_settings_for(office=office)
    version, template_body = _body_for(office=office, config=config, letter_id=letter_id, body=body)
    _template(template_body)
    if len(template_body) > MAX_BODY_LENGTH:
        raise BulkReplyRejected(f"Texts are limited to {MAX_BODY_LENGTH} characters.", field="body")
    if send_at is not None and send_at.tzinfo is None:
        raise BulkReplyRejected("Give the send time with its time zone.", field="send_at")
    if send_at is not None and send_at > timezone.now() + timedelta(days=365):
        raise BulkReplyRejected("Schedule it within a year.", field="send_at")
    _sender_numbers(office)
    resolved = audience_resolve(office=office, audience=audience, user=actor)
    candidates = _candidates(
        office=office,
        conversations=resolved.conversations,
        letter_id=version.letter_id if version is not None else None,
        skip_replied=skip_replied,
    )
    counts = _counts(candidates)
    bulk = BulkReply.objects.create(
        office=office,
        created_by_id=actor.pk,
        letter_version=version,
        body=template_body,
        audience=audience.as_json(),
        audience_label=resolved.label[:300],
        skip_replied=skip_replied,
        send_at=send_at,
        recipient_count=counts.recipients,
        exclusions=counts.exclusions,
    )
    if start:
        bulk_reply_start(office=office, actor=actor, pk=bulk.pk)
        bulk.refresh_from_db()
    return bulk


@transaction.atomic
def bulk_reply_redraft(
    *,
    office: Office,
    actor: AbstractBaseUser,
    pk: int,
    letter_id: int | None,
    body: str | None,
    skip_replied: bool,
    send_at: datetime | None,
) -> BulkReply:
    """Replace a draft with a fresh one for the same audience (another letter, skip option or send time).

    The old draft goes only if the new one could be made; a started bulk reply is never replaced."""
    old = _locked(office, pk)
    if old.status != BulkStatus.DRAFT:
        raise BulkReplyRejected(f"This bulk reply is already {old.get_status_display().lower()}.")
    fresh = bulk_reply_create(
        office=office,
        actor=actor,
        audience=Audience.from_json(old.audience),
        letter_id=letter_id,
        body=body,
        send_at=send_at,
        skip_replied=skip_replied,
    )
    old.delete()
    return fresh


def bulk_reply_get(*, office: Office, pk: int) -> BulkReply:
    bulk = BulkReply.objects.filter(office=office, pk=pk).select_related("letter_version__letter").first()
    if bulk is None:
        raise BulkReplyNotFound("No such bulk reply.")
    return bulk


def _locked(office: Office, pk: int) -> BulkReply:
    bulk = BulkReply.objects.select_for_update().filter(office=office, pk=pk).first()
    if bulk is None:
        raise BulkReplyNotFound("No such bulk reply.")
    return bulk


@dataclass(frozen=True, slots=True)
class Deferral:
    time_zone: str
    recipients: int
    at: datetime


@dataclass(slots=True)
class Preview:
    """What the staffer sees before sending. ``samples`` are real recipients' rendered texts."""

    recipients: int
    exclusions: dict[str, int]
    segments: int
    encodings: dict[str, int]
    cost: Decimal
    seconds: float
    deferrals: list[Deferral]
    samples: list[tuple[str, Rendered]] = field(default_factory=list)
    numbers: dict[str, int] = field(default_factory=dict)


def bulk_reply_preview(*, office: Office, bulk: BulkReply, now: datetime | None = None) -> Preview:
    """Render every recipient (nothing is written): exact segments, cost, time at the numbers' rates, and
    when the texts held for quiet hours will go out."""
    now = now or timezone.now()
    config = correspondence_settings_for(office=office)
    hours = quiet_hours(config)
    start_at = max(now, bulk.send_at) if bulk.send_at else now
    rows = list(_recipient_rows(office=office, bulk=bulk))
    segments = 0
    encodings: Counter[str] = Counter()
    per_number: Counter[str] = Counter()
    per_number_count: Counter[str] = Counter()
    deferred: dict[str, list[int]] = {}
    samples: list[tuple[str, Rendered]] = []
    exclusions: Counter[str] = Counter()
    for row in rows:
        if row.skip_reason:
            exclusions[row.skip_reason] += 1
            continue
        segments += row.rendered.segments
        encodings[row.rendered.encoding] += 1
        per_number[row.from_number] += row.rendered.segments
        per_number_count[row.from_number] += 1
        if hours.is_quiet(start_at, row.time_zone):
            deferred.setdefault(row.time_zone, []).append(1)
        if len(samples) < SAMPLE_SIZE:
            samples.append((row.name, row.rendered))
    rates = _number_rates(office)
    seconds = max((per_number[n] / rates.get(n, 1.0) for n in per_number), default=0.0)
    deferrals = [
        Deferral(time_zone=zone, recipients=len(items), at=hours.next_allowed(start_at, zone))
        for zone, items in sorted(deferred.items())
    ]
    recipients = sum(per_number_count.values())
    return Preview(
        recipients=recipients,
        exclusions=dict(exclusions),
        segments=segments,
        encodings=dict(encodings),
        cost=(segment_price(config) * segments).quantize(Decimal("0.01")),
        seconds=seconds,
        deferrals=deferrals,
        samples=samples,
        numbers=dict(per_number_count),
    )


def _number_rates(office: Office) -> dict[str, float]:
    return {
        number.e164: pacing.number_rate(
            number_type=number.number_type,
            messaging_service_sid=number.messaging_service_sid,
            override=number.send_rate,
        )
        for number in OfficePhoneNumber.objects.filter(office=office, sms_enabled=True)
    }


# --- Preparing ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Row:
    conversation_id: int
    constituent_id: int
    name: str
    skip_reason: str
    rendered: Rendered
    from_number: str
    time_zone: str
    time_zone_source: str


def _recipient_rows(*, office: Office, bulk: BulkReply) -> Iterator[_Row]:
    """Every constituent of the audience once, with their rendered text, sender and time zone."""
    template = _template(bulk.body)
    values = office_merge_values(office=office)
    numbers = _sender_numbers(office)
    by_e164 = {n.e164: n.e164 for n in numbers}
    default_number = numbers[0].e164
    resolved = audience_resolve(
        office=office, audience=Audience.from_json(bulk.audience), user=AnonymousUser()
    )
    candidates = _candidates(
        office=office,
        conversations=resolved.conversations,
        letter_id=bulk.letter_version.letter_id if bulk.letter_version is not None else None,
        skip_replied=bulk.skip_replied,
    )
    fields = (
        "pk",
        "constituent_id",
        "constituent__first_name",
        "constituent__last_name",
        "constituent__phone",
        "constituent__zip_code",
        "constituent__state",
        "constituent__carrier_zip",
        "reason",
        "last_text_to",
    )
    fallback = office.time_zone
    empty = Rendered(body="", segments=0, encoding="")
    for pk, constituent_id, first, last, phone, zip_code, state, carrier_zip, reason, last_to in (
        candidates.order_by("pk").values_list(*fields).iterator(chunk_size=PREPARE_BATCH)
    ):
        name = f"{first} {last}".strip() or phone
        if reason:
            yield _Row(pk, constituent_id, name, reason, empty, "", "", "")
            continue
        zone, source = localtime.recipient_time_zone(
            zip_code=zip_code, state=state, carrier_zip=carrier_zip, phone=phone, fallback=fallback
        )
        yield _Row(
            pk,
            constituent_id,
            name,
            "",
            render_for(template, values, first, last),
            by_e164.get(last_to or "", default_number),
            zone,
            source,
        )


@transaction.atomic
def bulk_reply_start(*, office: Office, actor: AbstractBaseUser, pk: int) -> BulkReply:
    """Draft → sending (or scheduled, if its send time is later). A worker prepares the rows."""
    bulk = _locked(office, pk)
    if bulk.status != BulkStatus.DRAFT:
        raise BulkReplyRejected(f"This bulk reply is already {bulk.get_status_display().lower()}.")
    if bulk.letter_version is not None:
        letter = FormLetter.objects.get(pk=bulk.letter_version.letter_id)
        if letter.retired_at is not None:
            raise BulkReplyRejected("This letter was retired since the preview.", field="letter")
    now = timezone.now()
    bulk.status = BulkStatus.SCHEDULED if bulk.send_at and bulk.send_at > now else BulkStatus.SENDING
    bulk.started_at = now
    bulk.started_by_id = actor.pk
    bulk.save(update_fields=["status", "started_at", "started_by"])
    from correspondence import tasks  # tasks import services; keep the import graph one-way at load time

    enqueue_on_commit(tasks.bulk_reply_prepare, bulk.pk)
    return bulk


def bulk_reply_prepare(*, bulk_reply_id: int) -> int:
    """Write one row per constituent of the audience, once; returns how many rows this call wrote.

    One transaction: the rows and ``prepared_at`` commit together, or (a worker killed halfway) none do, and
    the redelivered task starts again. Safe to run twice or at once: rows go in with ON CONFLICT DO NOTHING
    on (bulk reply, constituent), so a second preparation waits for the first at its first conflicting row
    and then writes nothing, and ``prepared_at`` is set once.
    """
    bulk = BulkReply.objects.select_related("office", "letter_version").filter(pk=bulk_reply_id).first()
    if (
        bulk is None
        or bulk.prepared_at is not None
        or bulk.status in (BulkStatus.DRAFT, BulkStatus.CANCELLED)
    ):
        return 0
    with transaction.atomic():
        return _prepare(bulk)


def _prepare(bulk: BulkReply) -> int:
    planner_jit_off()
    office = bulk.office
    written = 0
    batch: list[tuple[Any, ...]] = []
    not_before = bulk.send_at
    segments = 0
    exclusions: Counter[str] = Counter()
    recipients = 0
    for row in _recipient_rows(office=office, bulk=bulk):
        skipped = bool(row.skip_reason)
        if skipped:
            exclusions[row.skip_reason] += 1
        else:
            recipients += 1
            segments += row.rendered.segments
        batch.append(
            (
                office.pk,
                bulk.pk,
                row.constituent_id,
                row.conversation_id,
                RecipientState.SKIPPED if skipped else RecipientState.PENDING,
                row.skip_reason,
                row.rendered.body,
                row.rendered.segments or 1,
                row.rendered.encoding,
                row.from_number,
                row.time_zone,
                row.time_zone_source,
                not_before,
                0,
            )
        )
        if len(batch) >= PREPARE_BATCH:
            written += _insert(batch)
            batch = []
    if batch:
        written += _insert(batch)
    with transaction.atomic():
        locked = BulkReply.objects.select_for_update().get(pk=bulk.pk)
        if locked.prepared_at is None:
            locked.prepared_at = timezone.now()
            locked.recipient_count = recipients
            locked.exclusions = dict(exclusions)
            locked.segments_total = segments
            locked.save(update_fields=["prepared_at", "recipient_count", "exclusions", "segments_total"])
    return written


# The columns ``_insert`` writes, in the order of its tuples; the rest are NULL (message, handed_at).
_COPY_FIELDS = (
    "office",
    "bulk_reply",
    "constituent",
    "conversation",
    "state",
    "skip_reason",
    "body",
    "segments",
    "encoding",
    "from_number",
    "time_zone",
    "time_zone_source",
    "not_before",
    "attempts",
)


def _column(name: str) -> str:
    field = BulkRecipient._meta.get_field(name)
    if not isinstance(field, Field):
        raise TypeError(f"{name} is not a concrete field of BulkRecipient")
    return str(field.column)


def _insert(rows: list[tuple[Any, ...]]) -> int:
    """Write a batch of recipient rows; a row for a constituent this bulk reply already has is left out.

    COPY into a temporary table (dropped at commit), then one INSERT … SELECT … ON CONFLICT DO NOTHING on the
    unique (bulk reply, constituent): a fraction of the client time of ``bulk_create``, which builds a model
    instance and adapts every value in Python. Runs inside the preparation's transaction."""
    table = connection.ops.quote_name(BulkRecipient._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(_column(name)) for name in _COPY_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS bulk_recipient_batch ON COMMIT DROP AS "  # noqa: S608 - names from _meta
            f"SELECT {columns} FROM {table} WITH NO DATA"
        )
        with cursor.cursor.copy(f"COPY bulk_recipient_batch ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM bulk_recipient_batch "  # noqa: S608
            f"ON CONFLICT (bulk_reply_id, constituent_id) DO NOTHING"
        )
        inserted = int(cursor.rowcount)
        cursor.execute("TRUNCATE bulk_recipient_batch")
    return inserted


# --- Control -----------------------------------------------------------------------------------------------


@transaction.atomic
def bulk_reply_pause(*, office: Office, actor: AbstractBaseUser, pk: int) -> BulkReply:
    """Stop handing texts to delivery (the senders notice within a second); resume carries on."""
    bulk = _locked(office, pk)
    if bulk.status not in (BulkStatus.SENDING, BulkStatus.SCHEDULED):
        raise BulkReplyRejected(f"A {bulk.get_status_display().lower()} bulk reply cannot be paused.")
    bulk.status = BulkStatus.PAUSED
    bulk.paused_at = timezone.now()
    bulk.save(update_fields=["status", "paused_at"])
    return bulk


@transaction.atomic
def bulk_reply_resume(*, office: Office, actor: AbstractBaseUser, pk: int) -> BulkReply:
    bulk = _locked(office, pk)
    if bulk.status != BulkStatus.PAUSED:
        raise BulkReplyRejected("Only a paused bulk reply can be resumed.")
    now = timezone.now()
    bulk.status = BulkStatus.SCHEDULED if bulk.send_at and bulk.send_at > now else BulkStatus.SENDING
    bulk.paused_at = None
    bulk.save(update_fields=["status", "paused_at"])
    from correspondence import tasks  # tasks import services; keep the import graph one-way at load time

    enqueue_on_commit(tasks.bulk_reply_prepare, bulk.pk)
    enqueue_on_commit(tasks.bulk_reply_kick, bulk.pk)
    return bulk


@transaction.atomic
def bulk_reply_cancel(*, office: Office, actor: AbstractBaseUser, pk: int) -> BulkReply:
    """Nothing more is sent: waiting recipients are cancelled, and so is any text handed to delivery that has
    not left yet (a queued Message). Only texts already being sent to Twilio complete."""
    bulk = _locked(office, pk)
    if bulk.status in (BulkStatus.DONE, BulkStatus.CANCELLED):
        raise BulkReplyRejected(f"This bulk reply is already {bulk.get_status_display().lower()}.")
    now = timezone.now()
    bulk.status = BulkStatus.CANCELLED
    bulk.cancelled_at = now
    bulk.cancelled_by_id = actor.pk
    bulk.finished_at = now
    bulk.save(update_fields=["status", "cancelled_at", "cancelled_by", "finished_at"])
    BulkRecipient.objects.filter(bulk_reply=bulk, state=RecipientState.PENDING).update(
        state=RecipientState.CANCELLED
    )
    # A text handed to delivery but not claimed by it yet: delivery only claims queued rows.
    Message.objects.filter(
        pk__in=BulkRecipient.objects.filter(bulk_reply=bulk, state=RecipientState.HANDED).values(
            "message_id"
        ),
        status=MessageStatus.QUEUED,
    ).update(
        status=MessageStatus.CANCELED,
        error_message=CANCELLED_REASON,
        status_updated_at=now,
    )
    return bulk


def rates_for(*, office: Office) -> dict[str, float]:
    """Segments per second of each of the office's texting numbers."""
    return _number_rates(office)


def rates_for_office_id(*, office_id: int) -> dict[str, float]:
    office = Office.objects.filter(pk=office_id).first()
    return _number_rates(office) if office is not None else {}


def estimated_seconds(segments_by_number: Mapping[str, int], rates: Mapping[str, float]) -> float:
    """The numbers send in parallel: the slowest one decides."""
    return max((segments / rates.get(n, 1.0) for n, segments in segments_by_number.items()), default=0.0)
