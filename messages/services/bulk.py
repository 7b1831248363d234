"""Bulk triage: one action over a selection of conversations, or over every conversation matching a filter.

Each action is one transaction. It first locks the selected rows of the office (``FOR UPDATE``, in id order so
two bulk actions cannot deadlock), and if any requested id is not a conversation of this office, the whole
action is rejected before anything changes. Changes are set-based (one UPDATE or INSERT per
chunk of ids), and every changed conversation gets its timeline event, exactly as the one-conversation
services in ``messages.services.triage`` record them.

"All N matching" is confirmed by a person who was shown N: the confirmation carries the selection's
``Fingerprint`` (how many conversations, and a digest of their ids), and the action checks it under the lock.
If the filter now matches another set, nothing changes and the caller asks again (``BulkSelectionChanged``).

A bulk close is recorded as a ``BulkAction`` and can be undone for ``BULK_UNDO_SECONDS`` (a setting; ten
minutes unless set): ``bulk_close_undo`` reopens exactly the conversations it closed that are still closed by
it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from messages.models import (
    BulkAction,
    Conversation,
    ConversationEvent,
    ConversationStatus,
    ConversationTag,
    EventKind,
    Tag,
)
from messages.models import TriageQueue as Queue
from messages.selectors.rail import rail_counts_invalidate
from messages.services.rules import (
    AssigneeNotEligible,
    ForeignObjectNotFound,
    assignee_check,
    queue_check,
    tag_check,
)
from offices.models import Office

# PostgreSQL binds at most 65,535 parameters per statement; ids go in chunks well below that.
CHUNK = 5000
# One transaction should stay reasonably short: past this, narrow the filter and run it again.
MAX_BULK_SELECTION = 100_000
MAX_EXPLICIT_IDS = 1000


class BulkRejected(Exception):
    """The action was not applied; ``reason`` is written for staff."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BulkSelectionNotFound(BulkRejected, ForeignObjectNotFound):
    """Some selected id is not a conversation of this office. Views answer 404, as for any foreign object."""


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """The conversations a filter matched when someone was asked to confirm: how many, and a digest."""

    count: int
    digest: str

    @classmethod
    def of(cls, ids: Iterable[int]) -> Fingerprint:
        ordered = sorted(ids)
        digest = hashlib.blake2b(",".join(map(str, ordered)).encode(), digest_size=12).hexdigest()
        return cls(len(ordered), digest)


class BulkSelectionChanged(BulkRejected):
    """The filter matches another set of conversations than the one confirmed: nothing was changed."""

    def __init__(self, *, confirmed: Fingerprint, now: Fingerprint) -> None:
        if confirmed.count != now.count:
            reason = (
                f"The filter matched {_plural(confirmed.count)} when you were asked, and matches "
                f"{_plural(now.count)} now."
            )
        else:
            reason = f"The {_plural(now.count)} matching this filter are not the ones you were asked about."
        super().__init__(reason + " Nothing was changed: check the number and confirm again.")
        self.confirmed = confirmed
        self.now = now


@dataclass(frozen=True, slots=True)
class BulkResult:
    action: str
    selected: int
    changed: int
    summary: str
    # The record that can undo this action (a bulk close that changed something), else None.
    bulk_action_id: int | None = None


@dataclass(frozen=True, slots=True)
class Selection:
    """Explicit ids (checked against the office), or an office-scoped filtered queryset ("all N matching").

    ``confirmed`` is what the person who confirmed "all N matching" was shown; the action refuses to run on
    any other set."""

    ids: Sequence[int] | None = None
    matching: QuerySet[Conversation] | None = None
    confirmed: Fingerprint | None = None

    @classmethod
    def of_ids(cls, ids: Sequence[int]) -> Selection:
        return cls(ids=list(ids))

    @classmethod
    def of_matching(
        cls, queryset: QuerySet[Conversation], *, confirmed: Fingerprint | None = None
    ) -> Selection:
        return cls(matching=queryset, confirmed=confirmed)


def undo_window() -> timedelta:
    """How long a bulk close can be undone: the setting ``BULK_UNDO_SECONDS``."""
    return timedelta(seconds=settings.BULK_UNDO_SECONDS)


def matching_fingerprint(*, office: Office, queryset: QuerySet[Conversation]) -> Fingerprint:
    """What "all matching" would act on now, to show for confirmation (refused when too large to act on)."""
    ids = list(
        queryset.filter(office=office).order_by("pk").values_list("pk", flat=True)[: MAX_BULK_SELECTION + 1]
    )
    if len(ids) > MAX_BULK_SELECTION:
        raise BulkRejected(
            f"That filter matches more than {MAX_BULK_SELECTION:,} conversations. Narrow it first."
        )
    if not ids:
        raise BulkRejected("No conversations match this filter.")
    return Fingerprint.of(ids)


@dataclass(frozen=True, slots=True)
class _Row:
    pk: int
    status: str
    assignee_id: int | None
    queue_id: int | None


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def _lock(*, office: Office, selection: Selection) -> list[_Row]:
    """Lock the selected conversations of the office, in id order. Rejects foreign or missing ids."""
    fields = ("pk", "status", "assignee_id", "queue_id")
    if selection.matching is not None:
        # The filtered queryset may join constituents; lock only conversation rows.
        queryset = (
            selection.matching.filter(office=office)
            .order_by("pk")
            .select_for_update(of=("self",))
            .values_list(*fields)
        )
        rows = [_Row(*row) for row in queryset[: MAX_BULK_SELECTION + 1]]
        if len(rows) > MAX_BULK_SELECTION:
            raise BulkRejected(
                f"That filter matches more than {MAX_BULK_SELECTION:,} conversations. Narrow it first."
            )
        if not rows:
            raise BulkRejected("No conversations match this filter.")
        if selection.confirmed is not None:
            now = Fingerprint.of(row.pk for row in rows)
            if now != selection.confirmed:
                raise BulkSelectionChanged(confirmed=selection.confirmed, now=now)
        return rows
    wanted = sorted(set(selection.ids or ()))
    if not wanted:
        raise BulkRejected("Select at least one conversation.")
    if len(wanted) > MAX_EXPLICIT_IDS:
        raise BulkRejected(f"Select at most {MAX_EXPLICIT_IDS:,} conversations, or use “all matching”.")
    rows = []
    for chunk in _chunks(wanted):
        rows.extend(
            _Row(*row)
            for row in Conversation.objects.filter(office=office, pk__in=chunk)
            .order_by("pk")
            .select_for_update()
            .values_list(*fields)
        )
    if len(rows) != len(wanted):
        raise BulkSelectionNotFound("Some selected conversations do not exist.")
    return rows


def _events(
    *,
    office: Office,
    actor: AbstractBaseUser | None,
    kind: EventKind,
    data: dict[int, dict[str, Any]],
    now: datetime | None = None,
) -> None:
    now = now or timezone.now()
    ConversationEvent.objects.bulk_create(
        (
            ConversationEvent(
                office=office,
                conversation_id=pk,
                kind=kind,
                actor_id=actor.pk if actor is not None else None,
                data=event_data,
                created_at=now,
            )
            for pk, event_data in data.items()
        ),
        batch_size=2000,
    )


def _done(office: Office) -> None:
    office_id = office.pk
    transaction.on_commit(lambda: rail_counts_invalidate(office_id=office_id))


def _plural(n: int) -> str:
    return f"{n:,} conversation{'s' if n != 1 else ''}"


def _summary(verb: str, rows: list[_Row], changed: int, unchanged_note: str) -> str:
    text = f"{_plural(changed)} {verb}"
    skipped = len(rows) - changed
    if skipped:
        text += f"; {skipped:,} {unchanged_note}"
    return text + "."


def _check_tag(office: Office, tag: Tag) -> None:
    try:
        tag_check(office_id=office.pk, tag=tag)
    except ForeignObjectNotFound as exc:
        raise BulkSelectionNotFound(str(exc)) from exc


@transaction.atomic
def bulk_tag(*, office: Office, actor: AbstractBaseUser | None, selection: Selection, tag: Tag) -> BulkResult:
    _check_tag(office, tag)
    rows = _lock(office=office, selection=selection)
    ids = [row.pk for row in rows]
    already: set[int] = set()
    for chunk in _chunks(ids):
        already.update(
            ConversationTag.objects.filter(tag=tag, conversation_id__in=chunk).values_list(
                "conversation_id", flat=True
            )
        )
    new = [pk for pk in ids if pk not in already]
    added_by = actor.pk if actor is not None else None
    ConversationTag.objects.bulk_create(
        (ConversationTag(conversation_id=pk, tag=tag, added_by_id=added_by) for pk in new),
        batch_size=2000,
    )
    _events(
        office=office,
        actor=actor,
        kind=EventKind.TAGGED,
        data={pk: {"tag_id": tag.pk, "tag": tag.name} for pk in new},
    )
    _done(office)
    return BulkResult(
        "tag", len(rows), len(new), _summary(f"tagged “{tag.name}”", rows, len(new), "already had it")
    )


@transaction.atomic
def bulk_untag(
    *, office: Office, actor: AbstractBaseUser | None, selection: Selection, tag: Tag
) -> BulkResult:
    _check_tag(office, tag)
    rows = _lock(office=office, selection=selection)
    removed: list[int] = []
    for chunk in _chunks([row.pk for row in rows]):
        links = ConversationTag.objects.filter(tag=tag, conversation_id__in=chunk)
        removed.extend(links.values_list("conversation_id", flat=True))
        links.delete()
    _events(
        office=office,
        actor=actor,
        kind=EventKind.UNTAGGED,
        data={pk: {"tag_id": tag.pk, "tag": tag.name} for pk in removed},
    )
    _done(office)
    return BulkResult(
        "untag",
        len(rows),
        len(removed),
        _summary(f"untagged “{tag.name}”", rows, len(removed), "did not have it"),
    )


@transaction.atomic
def bulk_assign(
    *, office: Office, actor: AbstractBaseUser | None, selection: Selection, assignee: AbstractBaseUser | None
) -> BulkResult:
    try:
        assignee_check(office_id=office.pk, assignee=assignee)
    except AssigneeNotEligible as exc:
        raise BulkRejected(str(exc)) from exc
    rows = _lock(office=office, selection=selection)
    new_id = assignee.pk if assignee is not None else None
    changing = [row for row in rows if row.assignee_id != new_id]
    ids = [row.pk for row in changing]
    for chunk in _chunks(ids):
        Conversation.objects.filter(office=office, pk__in=chunk).update(assignee_id=new_id)
    label = assignee.get_username() if assignee is not None else ""
    _events(
        office=office,
        actor=actor,
        kind=EventKind.ASSIGNED,
        data={
            row.pk: {"assignee_id": new_id, "assignee": label, "previous_id": row.assignee_id}
            for row in changing
        },
    )
    _done(office)
    verb = f"assigned to {label}" if assignee is not None else "unassigned"
    return BulkResult("assign", len(rows), len(ids), _summary(verb, rows, len(ids), "already were"))


@transaction.atomic
def bulk_move_queue(
    *, office: Office, actor: AbstractBaseUser | None, selection: Selection, queue: Queue | None
) -> BulkResult:
    try:
        queue_check(office_id=office.pk, queue=queue)
    except ForeignObjectNotFound as exc:
        raise BulkSelectionNotFound(str(exc)) from exc
    rows = _lock(office=office, selection=selection)
    new_id = queue.pk if queue is not None else None
    changing = [row for row in rows if row.queue_id != new_id]
    ids = [row.pk for row in changing]
    for chunk in _chunks(ids):
        Conversation.objects.filter(office=office, pk__in=chunk).update(queue_id=new_id)
    name = queue.name if queue is not None else ""
    _events(
        office=office,
        actor=actor,
        kind=EventKind.QUEUE,
        data={row.pk: {"queue_id": new_id, "queue": name, "previous_id": row.queue_id} for row in changing},
    )
    _done(office)
    verb = f"moved to {name}" if queue is not None else "taken out of their queue"
    return BulkResult("queue", len(rows), len(ids), _summary(verb, rows, len(ids), "already were there"))


@transaction.atomic
def bulk_close(*, office: Office, actor: AbstractBaseUser | None, selection: Selection) -> BulkResult:
    """Close the selection; recorded as a ``BulkAction`` that ``bulk_close_undo`` can undo for a while."""
    rows = _lock(office=office, selection=selection)
    changing = [row for row in rows if row.status != ConversationStatus.CLOSED]
    now = timezone.now()
    snoozed = dict(
        Conversation.objects.filter(
            office=office,
            pk__in=[row.pk for row in changing if row.status == ConversationStatus.SNOOZED],
        ).values_list("pk", "snoozed_until")
    )
    record = None
    if changing:
        record = BulkAction.objects.create(
            office=office,
            actor_id=actor.pk if actor is not None else None,
            action="close",
            conversation_ids=[row.pk for row in changing],
            created_at=now,
        )
    for chunk in _chunks([row.pk for row in changing]):
        Conversation.objects.filter(office=office, pk__in=chunk).update(
            status=ConversationStatus.CLOSED, closed_at=now, snoozed_until=None
        )
    data: dict[int, dict[str, Any]] = {}
    for row in changing:
        event = {
            "from": row.status,
            "to": ConversationStatus.CLOSED.value,
            "bulk_action": record.pk if record else None,
        }
        until = snoozed.get(row.pk)
        if until is not None:
            event["snoozed_until"] = until.isoformat()
        data[row.pk] = event
    _events(office=office, actor=actor, kind=EventKind.STATUS, data=data, now=now)
    _done(office)
    return BulkResult(
        "close",
        len(rows),
        len(changing),
        _summary("closed", rows, len(changing), "already were closed"),
        bulk_action_id=record.pk if record is not None else None,
    )


UNDO_REASON = "undoing a bulk close"


@transaction.atomic
def bulk_close_undo(*, office: Office, actor: AbstractBaseUser | None, bulk_action_id: int) -> BulkResult:
    """Reopen the conversations a bulk close closed, if they are still closed by it; record who did it.

    A conversation is left as it is when it is no longer closed (a new text reopened it), when a status event
    came after the bulk close's own (someone reopened, closed or snoozed it since), or when its constituent
    has another unclosed conversation now (a new text started one: two unclosed threads cannot exist). Each
    one reopened returns to the status it had (a snooze only if its time is still to come, else open), and
    gets a status event naming the bulk action. Only within ``undo_window()``, once, and in the same office.
    """
    record = (
        BulkAction.objects.select_for_update()
        .filter(office=office, pk=bulk_action_id, action="close")
        .first()
    )
    if record is None:
        raise BulkSelectionNotFound("No such bulk action.")
    if record.undone_at is not None:
        raise BulkRejected("That bulk close was already undone.")
    now = timezone.now()
    if now > record.created_at + undo_window():
        minutes = int(undo_window().total_seconds() // 60)
        raise BulkRejected(f"Too late to undo that bulk close: it can be undone for {minutes} minutes only.")
    reopening, closes = _still_closed_by(office=office, record=record)
    targets = {pk: _status_before_close(closes[pk][1], now) for pk in reopening}
    try:
        with transaction.atomic():
            for target in set(targets.values()):
                pks = [pk for pk, value in targets.items() if value == target]
                for chunk in _chunks(pks):
                    Conversation.objects.filter(office=office, pk__in=chunk).update(
                        status=target[0], closed_at=None, snoozed_until=target[1]
                    )
    except IntegrityError as exc:
        # A new text started another thread for one of these constituents while this ran.
        raise BulkRejected(
            "A new conversation arrived while undoing. Nothing was changed: try again."
        ) from exc
    _events(
        office=office,
        actor=actor,
        kind=EventKind.STATUS,
        data={
            pk: {
                "from": ConversationStatus.CLOSED.value,
                "to": status,
                "reason": UNDO_REASON,
                "undoes_bulk_action": record.pk,
                **({"until": until.isoformat()} if until is not None else {}),
            }
            for pk, (status, until) in targets.items()
        },
        now=now,
    )
    record.undone_at = now
    record.undone_by_id = actor.pk if actor is not None else None
    record.save(update_fields=["undone_at", "undone_by"])
    _done(office)
    text = f"{_plural(len(targets))} reopened"
    left = len(record.conversation_ids) - len(targets)
    if left:
        text += (
            f"; {left:,} changed since the bulk close and {'was' if left == 1 else 'were'} left as they are"
        )
    return BulkResult(
        "undo", len(record.conversation_ids), len(targets), text + ".", bulk_action_id=record.pk
    )


def _still_closed_by(
    *, office: Office, record: BulkAction
) -> tuple[list[int], dict[int, tuple[int, dict[str, Any]]]]:
    """The conversations a bulk close may reopen, and each one's close event (its id, its data).

    Still closed by it: closed at the action's time, closed by its event, no status event since, and no other
    unclosed conversation of the same constituent.
    """
    ids = sorted(record.conversation_ids)
    rows: list[tuple[int, str, datetime | None, int]] = []
    closes: dict[int, tuple[int, dict[str, Any]]] = {}  # conversation id → (its close event's id, data)
    changed_since: set[int] = set()
    for chunk in _chunks(ids):
        rows.extend(
            Conversation.objects.filter(office=office, pk__in=chunk)
            .order_by("pk")
            .select_for_update()
            .values_list("pk", "status", "closed_at", "constituent_id")
        )
        events = list(
            ConversationEvent.objects.filter(
                office=office,
                conversation_id__in=chunk,
                kind=EventKind.STATUS,
                created_at__gte=record.created_at,
            )
            .order_by("pk")
            .values_list("conversation_id", "pk", "data")
        )
        for conversation_id, event_id, data in events:
            if data.get("bulk_action") == record.pk:
                closes[conversation_id] = (event_id, data)
        for conversation_id, event_id, _ in events:
            own = closes.get(conversation_id)
            if own is None or event_id > own[0]:
                changed_since.add(conversation_id)
    candidates = [
        (pk, constituent_id)
        for pk, status, closed_at, constituent_id in rows
        if status == ConversationStatus.CLOSED
        and closed_at == record.created_at
        and pk in closes
        and pk not in changed_since
    ]
    busy: set[int] = set()
    for chunk in _chunks([constituent_id for _, constituent_id in candidates]):
        busy.update(
            Conversation.objects.filter(office=office, constituent_id__in=chunk)
            .exclude(status=ConversationStatus.CLOSED)
            .values_list("constituent_id", flat=True)
        )
    reopening = [pk for pk, constituent_id in candidates if constituent_id not in busy]
    return reopening, closes


def _status_before_close(data: dict[str, Any], now: datetime) -> tuple[str, datetime | None]:
    """The status (and snooze end) a conversation had before a close, per its close event's ``data``."""
    status, until = data.get("from", ConversationStatus.OPEN.value), None
    if status == ConversationStatus.SNOOZED:
        raw = data.get("snoozed_until")
        until = datetime.fromisoformat(raw) if raw else None
        if until is None or until <= now:
            status, until = ConversationStatus.OPEN.value, None
    elif status not in (ConversationStatus.OPEN, ConversationStatus.PENDING):
        status = ConversationStatus.OPEN.value
    return status, until


@transaction.atomic
def bulk_snooze(
    *, office: Office, actor: AbstractBaseUser | None, selection: Selection, until: datetime
) -> BulkResult:
    """Snooze every selected conversation that is not closed (closed ones are left, and counted)."""
    if timezone.is_naive(until) or until <= timezone.now():
        raise BulkRejected("Snooze until a time in the future.")
    rows = _lock(office=office, selection=selection)
    changing = [row for row in rows if row.status != ConversationStatus.CLOSED]
    for chunk in _chunks([row.pk for row in changing]):
        Conversation.objects.filter(office=office, pk__in=chunk).update(
            status=ConversationStatus.SNOOZED, snoozed_until=until
        )
    _events(
        office=office,
        actor=actor,
        kind=EventKind.STATUS,
        data={
            row.pk: {"from": row.status, "to": ConversationStatus.SNOOZED.value, "until": until.isoformat()}
            for row in changing
        },
    )
    _done(office)
    return BulkResult(
        "snooze",
        len(rows),
        len(changing),
        _summary("snoozed", rows, len(changing), "closed, left as they were"),
    )
