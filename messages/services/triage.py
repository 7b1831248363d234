"""Triage writes on one conversation: assign, tag, queue, priority, snooze, close, reopen, notes, read state.

Each service locks the conversation row (``SELECT … FOR UPDATE``), re-reads it under the lock, changes it
only if something changes, and records a ConversationEvent (who, what, when) for the timeline. They return
True when they changed something. Cached inbox counts for the office are dropped on commit.

Callers pass objects they resolved through office-scoped selectors; the services check again that every
object (tag, queue, assignee) belongs to the conversation's office and raise ``TriageRejected`` if not.
"""

from __future__ import annotations

import functools
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from constituents.models import Constituent
from messages.models import (
    Channel,
    Conversation,
    ConversationStatus,
    ConversationTag,
    Direction,
    EventKind,
    Message,
    MessageStatus,
    Priority,
    Tag,
    TriageQueue,
)
from messages.selectors.rail import rail_counts_invalidate
from messages.services.events import event_record
from messages.services.rules import AssigneeNotEligible, assignee_check, queue_check, tag_check
from messages.services.threading import conversation_touch

MAX_NOTE_LENGTH = 4000


class TriageRejected(Exception):
    """The change cannot be made; ``reason`` is written for staff."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _locked(conversation: Conversation) -> Conversation:
    return Conversation.objects.select_for_update().get(pk=conversation.pk, office_id=conversation.office_id)


def _changed(conversation: Conversation, locked: Conversation, fields: list[str]) -> None:
    """Save ``fields`` of the locked row and mirror them onto the caller's instance."""
    locked.save(update_fields=fields)
    for name in fields:
        setattr(conversation, name, getattr(locked, name))
    office_id = locked.office_id
    transaction.on_commit(lambda: rail_counts_invalidate(office_id=office_id))


def _user_label(user: AbstractBaseUser | None) -> str:
    return user.get_username() if user is not None else ""


@transaction.atomic
def conversation_assign(
    *, conversation: Conversation, assignee: AbstractBaseUser | None, actor: AbstractBaseUser | None
) -> bool:
    """Give the conversation to an admin or staff member of its office, or to nobody (``assignee=None``)."""
    try:
        assignee_check(office_id=conversation.office_id, assignee=assignee)
    except AssigneeNotEligible as exc:
        raise TriageRejected(str(exc)) from exc
    locked = _locked(conversation)
    new_id = assignee.pk if assignee is not None else None
    if locked.assignee_id == new_id:
        return False
    previous_id = locked.assignee_id
    previous = locked.assignee
    locked.assignee_id = new_id
    _changed(conversation, locked, ["assignee"])
    event_record(
        conversation=locked,
        kind=EventKind.ASSIGNED,
        actor=actor,
        data={
            "assignee_id": new_id,
            "assignee": _user_label(assignee),
            "previous_id": previous_id,
            "previous": _user_label(previous),
        },
    )
    return True


def conversation_claim(*, conversation: Conversation, actor: AbstractBaseUser) -> bool:
    """Assign the conversation to the person acting."""
    return conversation_assign(conversation=conversation, assignee=actor, actor=actor)


def _check_tag(conversation: Conversation, tag: Tag) -> None:
    tag_check(office_id=conversation.office_id, tag=tag)  # a foreign tag is "not found", as everywhere


@transaction.atomic
def conversation_tag(*, conversation: Conversation, tag: Tag, actor: AbstractBaseUser | None) -> bool:
    _check_tag(conversation, tag)
    locked = _locked(conversation)
    _, created = ConversationTag.objects.get_or_create(
        conversation=locked, tag=tag, defaults={"added_by_id": actor.pk if actor is not None else None}
    )
    if not created:
        return False
    transaction.on_commit(lambda: rail_counts_invalidate(office_id=locked.office_id))
    event_record(
        conversation=locked, kind=EventKind.TAGGED, actor=actor, data={"tag_id": tag.pk, "tag": tag.name}
    )
    return True


@transaction.atomic
def conversation_untag(*, conversation: Conversation, tag: Tag, actor: AbstractBaseUser | None) -> bool:
    _check_tag(conversation, tag)
    locked = _locked(conversation)
    deleted, _ = ConversationTag.objects.filter(conversation=locked, tag=tag).delete()
    if not deleted:
        return False
    transaction.on_commit(lambda: rail_counts_invalidate(office_id=locked.office_id))
    event_record(
        conversation=locked, kind=EventKind.UNTAGGED, actor=actor, data={"tag_id": tag.pk, "tag": tag.name}
    )
    return True


@transaction.atomic
def conversation_move_queue(
    *, conversation: Conversation, queue: TriageQueue | None, actor: AbstractBaseUser | None
) -> bool:
    """Move to another triage queue of the office, or out of every queue (``queue=None``)."""
    queue_check(office_id=conversation.office_id, queue=queue)  # a foreign queue is "not found"
    locked = _locked(conversation)
    new_id = queue.pk if queue is not None else None
    if locked.queue_id == new_id:
        return False
    previous = locked.queue
    locked.queue_id = new_id
    _changed(conversation, locked, ["queue"])
    event_record(
        conversation=locked,
        kind=EventKind.QUEUE,
        actor=actor,
        data={
            "queue_id": new_id,
            "queue": queue.name if queue is not None else "",
            "previous_id": previous.pk if previous is not None else None,
            "previous": previous.name if previous is not None else "",
        },
    )
    return True


@transaction.atomic
def conversation_set_priority(
    *, conversation: Conversation, priority: int, actor: AbstractBaseUser | None
) -> bool:
    if priority not in Priority.values:
        raise TriageRejected("Choose low, normal, high or urgent.")
    locked = _locked(conversation)
    if locked.priority == priority:
        return False
    previous = locked.priority
    locked.priority = priority
    _changed(conversation, locked, ["priority"])
    event_record(
        conversation=locked,
        kind=EventKind.PRIORITY,
        actor=actor,
        data={"from": previous, "to": priority, "label": Priority(priority).label},
    )
    return True


def _status_event(locked: Conversation, previous: str, actor: AbstractBaseUser | None, **extra: str) -> None:
    event_record(
        conversation=locked,
        kind=EventKind.STATUS,
        actor=actor,
        data={"from": previous, "to": locked.status, **extra},
    )


@transaction.atomic
def conversation_snooze(
    *,
    conversation: Conversation,
    until: datetime,
    actor: AbstractBaseUser | None,
    now: datetime | None = None,
) -> bool:
    """Hide the conversation from open views until ``until``; a new message from the constituent wakes it."""
    now = now or timezone.now()
    if timezone.is_naive(until):
        raise TriageRejected("Give the snooze time with a time zone.")
    if until <= now:
        raise TriageRejected("Snooze until a time in the future.")
    locked = _locked(conversation)
    if locked.status == ConversationStatus.CLOSED:
        raise TriageRejected("This conversation is closed. Reopen it before snoozing.")
    if locked.status == ConversationStatus.SNOOZED and locked.snoozed_until == until:
        return False
    previous = locked.status
    locked.status = ConversationStatus.SNOOZED
    locked.snoozed_until = until
    _changed(conversation, locked, ["status", "snoozed_until"])
    _status_event(locked, previous, actor, until=until.isoformat())
    return True


@transaction.atomic
def conversation_close(*, conversation: Conversation, actor: AbstractBaseUser | None) -> bool:
    locked = _locked(conversation)
    if locked.status == ConversationStatus.CLOSED:
        return False
    previous = locked.status
    locked.status = ConversationStatus.CLOSED
    locked.closed_at = timezone.now()
    locked.snoozed_until = None
    _changed(conversation, locked, ["status", "closed_at", "snoozed_until"])
    _status_event(locked, previous, actor)
    return True


@transaction.atomic
def conversation_reopen(*, conversation: Conversation, actor: AbstractBaseUser | None) -> bool:
    """Back to open from closed, snoozed or pending.

    A constituent has at most one conversation that is not closed; reopening an old one while a newer one is
    open is refused (the database constraint would refuse it too).
    """
    locked = _locked(conversation)
    if locked.status == ConversationStatus.OPEN:
        return False
    previous = locked.status
    locked.status = ConversationStatus.OPEN
    locked.closed_at = None
    locked.snoozed_until = None
    try:
        with transaction.atomic():
            _changed(conversation, locked, ["status", "closed_at", "snoozed_until"])
    except IntegrityError as exc:
        other = (
            Conversation.objects.filter(constituent_id=locked.constituent_id)
            .exclude(status=ConversationStatus.CLOSED)
            .exclude(pk=locked.pk)
            .values_list("pk", flat=True)
            .first()
        )
        if other is None:
            raise
        raise TriageRejected(
            f"This constituent already has an open conversation (#{other}). Continue there instead."
        ) from exc
    _status_event(locked, previous, actor)
    return True


@transaction.atomic
def conversation_mark_read(*, conversation: Conversation, reader: AbstractBaseUser | None) -> bool:
    """Mark everything the constituent has sent so far as read by staff. No event: reading is not triage."""
    if not conversation.is_unread:
        return False
    now = timezone.now()
    updated = Conversation.objects.filter(
        pk=conversation.pk, office_id=conversation.office_id, last_inbound_at__isnull=False
    ).update(staff_read_at=now)
    conversation.staff_read_at = now
    return bool(updated)


@transaction.atomic
def note_add(*, conversation: Conversation, body: str, author: AbstractBaseUser) -> Message:
    """An internal note on the timeline. Never sent to the constituent."""
    text = body.replace("\x00", "").strip()
    if not text:
        raise TriageRejected("Write the note before saving it.")
    if len(text) > MAX_NOTE_LENGTH:
        raise TriageRejected(f"Notes are limited to {MAX_NOTE_LENGTH} characters.")
    locked = _locked(conversation)
    message = Message.objects.create(
        office_id=locked.office_id,
        conversation=locked,
        direction=Direction.INTERNAL,
        channel=Channel.NOTE,
        body=text,
        status=MessageStatus.RECEIVED,
        sent_by_id=author.pk,
        created_at=timezone.now(),
    )
    conversation_touch(conversation=locked, message=message)
    return message


@transaction.atomic
def snoozed_conversations_wake(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Reopen snoozed conversations whose time has come. Meant for a periodic task; returns how many woke."""
    now = now or timezone.now()
    due = list(
        Conversation.objects.select_for_update(skip_locked=True)
        .filter(status=ConversationStatus.SNOOZED, snoozed_until__lte=now)
        .order_by("snoozed_until")[:limit]
    )
    for conversation in due:
        conversation.status = ConversationStatus.OPEN
        conversation.snoozed_until = None
        conversation.save(update_fields=["status", "snoozed_until"])
        _status_event(conversation, ConversationStatus.SNOOZED, None, reason="snooze ended")
    for office_id in {c.office_id for c in due}:
        transaction.on_commit(functools.partial(rail_counts_invalidate, office_id=office_id))
    return len(due)


# --- The constituent panel -------------------------------------------------------------------------------
# Constituent profile edits belong with constituents' services; the inbox is their only editor so far, so the
# service lives here until a second one needs it.

PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "zip_code",
    "in_district",
    "preferred_language",
)


@transaction.atomic
def constituent_profile_update(*, constituent: Constituent, changes: dict[str, object]) -> list[str]:
    """Apply staff edits to the profile fields above (never phone or consent). Returns the changed fields."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise TriageRejected(f"These fields cannot be edited here: {', '.join(sorted(unknown))}.")
    locked = Constituent.objects.select_for_update().get(pk=constituent.pk, office_id=constituent.office_id)
    changed = [name for name, value in changes.items() if getattr(locked, name) != value]
    if not changed:
        return []
    for name in changed:
        setattr(locked, name, changes[name])
    try:
        locked.full_clean(exclude=[f.name for f in Constituent._meta.fields if f.name not in changed])
    except ValidationError as exc:
        raise TriageRejected(" ".join(exc.messages)) from exc
    locked.save(update_fields=[*changed, "updated_at"])
    for name in changed:
        setattr(constituent, name, changes[name])
    return changed
