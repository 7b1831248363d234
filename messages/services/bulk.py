"""Bulk triage: one action over a selection of conversations, or over every conversation matching a filter.

Each action is one transaction. It first locks the selected rows of the office (``FOR UPDATE``, in id order so
two bulk actions cannot deadlock), and if any requested id is not a conversation of this office, the whole
action is rejected before anything changes. Changes are set-based (one UPDATE or INSERT per
chunk of ids), and every changed conversation gets its timeline event, exactly as the one-conversation
services in ``messages.services.triage`` record them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from messages.models import (
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
class BulkResult:
    action: str
    selected: int
    changed: int
    summary: str


@dataclass(frozen=True, slots=True)
class Selection:
    """Explicit ids (checked against the office), or an office-scoped filtered queryset ("all N matching")."""

    ids: Sequence[int] | None = None
    matching: QuerySet[Conversation] | None = None

    @classmethod
    def of_ids(cls, ids: Sequence[int]) -> Selection:
        return cls(ids=list(ids))

    @classmethod
    def of_matching(cls, queryset: QuerySet[Conversation]) -> Selection:
        return cls(matching=queryset)


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
    *, office: Office, actor: AbstractBaseUser | None, kind: EventKind, data: dict[int, dict[str, Any]]
) -> None:
    now = timezone.now()
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
    rows = _lock(office=office, selection=selection)
    changing = [row for row in rows if row.status != ConversationStatus.CLOSED]
    now = timezone.now()
    for chunk in _chunks([row.pk for row in changing]):
        Conversation.objects.filter(office=office, pk__in=chunk).update(
            status=ConversationStatus.CLOSED, closed_at=now, snoozed_until=None
        )
    _events(
        office=office,
        actor=actor,
        kind=EventKind.STATUS,
        data={row.pk: {"from": row.status, "to": ConversationStatus.CLOSED.value} for row in changing},
    )
    _done(office)
    return BulkResult(
        "close", len(rows), len(changing), _summary("closed", rows, len(changing), "already were closed")
    )


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
