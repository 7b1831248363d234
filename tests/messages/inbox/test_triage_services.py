"""messages.services.triage: one-conversation writes, each recording who did what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from constituents.models import Constituent
from messages.models import (
    Channel,
    Conversation,
    ConversationEvent,
    ConversationStatus,
    Direction,
    EventKind,
    Message,
)
from messages.services import triage
from messages.services.rules import ForeignObjectNotFound
from tests import factories


def events(conversation: Conversation, kind: str) -> list[ConversationEvent]:
    return list(ConversationEvent.objects.filter(conversation=conversation, kind=kind).order_by("pk"))


def test_assign_records_who_assigned_whom(inbox):
    c = inbox.conversations["water"]
    assert triage.conversation_assign(conversation=c, assignee=inbox.other_staff, actor=inbox.staff)
    c.refresh_from_db()
    assert c.assignee_id == inbox.other_staff.pk
    (event,) = events(c, EventKind.ASSIGNED)
    assert event.actor_id == inbox.staff.pk
    assert event.data["assignee"] == "bob"
    assert event.data["previous_id"] is None


def test_assigning_to_the_same_person_changes_nothing_and_records_nothing(inbox):
    c = inbox.conversations["rent"]  # already alice's
    assert not triage.conversation_assign(conversation=c, assignee=inbox.staff, actor=inbox.staff)
    assert events(c, EventKind.ASSIGNED) == []


def test_claim_assigns_to_the_actor(inbox):
    c = inbox.conversations["water"]
    assert triage.conversation_claim(conversation=c, actor=inbox.other_staff)
    c.refresh_from_db()
    assert c.assignee_id == inbox.other_staff.pk


def test_unassign_records_the_previous_owner(inbox):
    c = inbox.conversations["rent"]
    assert triage.conversation_assign(conversation=c, assignee=None, actor=inbox.admin)
    (event,) = events(c, EventKind.ASSIGNED)
    assert event.data == {
        "assignee_id": None,
        "assignee": "",
        "previous_id": inbox.staff.pk,
        "previous": "alice",
    }


def test_cannot_assign_to_an_official_or_to_someone_outside_the_office(inbox):
    c = inbox.conversations["water"]
    with pytest.raises(triage.TriageRejected):
        triage.conversation_assign(conversation=c, assignee=inbox.official, actor=inbox.staff)
    stranger = factories.MembershipFactory.create(role="staff").user
    with pytest.raises(triage.TriageRejected):
        triage.conversation_assign(conversation=c, assignee=stranger, actor=inbox.staff)
    c.refresh_from_db()
    assert c.assignee_id is None


def test_tag_and_untag_are_idempotent_and_recorded(inbox):
    c = inbox.conversations["water"]
    assert triage.conversation_tag(conversation=c, tag=inbox.housing, actor=inbox.staff)
    assert not triage.conversation_tag(conversation=c, tag=inbox.housing, actor=inbox.staff)
    assert set(c.tags.values_list("name", flat=True)) == {"Health care", "Housing"}
    assert triage.conversation_untag(conversation=c, tag=inbox.health, actor=inbox.staff)
    assert not triage.conversation_untag(conversation=c, tag=inbox.health, actor=inbox.staff)
    assert [e.data["tag"] for e in events(c, EventKind.TAGGED)] == ["Housing"]
    assert [e.data["tag"] for e in events(c, EventKind.UNTAGGED)] == ["Health care"]


def test_another_offices_tag_or_queue_is_not_found(inbox):
    c = inbox.conversations["water"]
    foreign_tag = factories.TagFactory.create(name="Health care")
    foreign_queue = factories.QueueFactory.create(name="Casework")
    with pytest.raises(ForeignObjectNotFound, match="No such tag"):
        triage.conversation_tag(conversation=c, tag=foreign_tag, actor=inbox.staff)
    with pytest.raises(ForeignObjectNotFound, match="No such queue"):
        triage.conversation_move_queue(conversation=c, queue=foreign_queue, actor=inbox.staff)
    assert not c.tags.filter(pk=foreign_tag.pk).exists()


def test_move_queue_and_out_of_every_queue(inbox):
    c = inbox.conversations["water"]
    assert triage.conversation_move_queue(conversation=c, queue=inbox.press, actor=inbox.staff)
    assert triage.conversation_move_queue(conversation=c, queue=None, actor=inbox.staff)
    c.refresh_from_db()
    assert c.queue_id is None
    assert [(e.data["previous"], e.data["queue"]) for e in events(c, EventKind.QUEUE)] == [
        ("Casework", "Press"),
        ("Press", ""),
    ]


def test_set_priority_validates_the_value(inbox):
    c = inbox.conversations["water"]
    assert triage.conversation_set_priority(conversation=c, priority=3, actor=inbox.staff)
    assert events(c, EventKind.PRIORITY)[0].data["label"] == "Urgent"
    with pytest.raises(triage.TriageRejected):
        triage.conversation_set_priority(conversation=c, priority=9, actor=inbox.staff)


def test_snooze_needs_a_future_time_and_an_unclosed_conversation(inbox):
    c = inbox.conversations["water"]
    with pytest.raises(triage.TriageRejected):
        triage.conversation_snooze(
            conversation=c, until=timezone.now() - timedelta(minutes=1), actor=inbox.staff
        )
    until = timezone.now() + timedelta(days=1)
    assert triage.conversation_snooze(conversation=c, until=until, actor=inbox.staff)
    c.refresh_from_db()
    assert (c.status, c.snoozed_until) == (ConversationStatus.SNOOZED, until)
    assert events(c, EventKind.STATUS)[0].data["until"] == until.isoformat()
    with pytest.raises(triage.TriageRejected):
        triage.conversation_snooze(conversation=inbox.conversations["closed"], until=until, actor=inbox.staff)


def test_close_then_reopen(inbox):
    c = inbox.conversations["snoozed"]
    assert triage.conversation_close(conversation=c, actor=inbox.staff)
    c.refresh_from_db()
    assert c.status == ConversationStatus.CLOSED
    assert c.closed_at
    assert c.snoozed_until is None
    assert not triage.conversation_close(conversation=c, actor=inbox.staff)
    assert triage.conversation_reopen(conversation=c, actor=inbox.staff)
    c.refresh_from_db()
    assert c.status == ConversationStatus.OPEN
    assert c.closed_at is None
    assert [(e.data["from"], e.data["to"]) for e in events(c, EventKind.STATUS)] == [
        ("snoozed", "closed"),
        ("closed", "open"),
    ]


def test_reopen_is_refused_while_the_constituent_has_another_open_conversation(inbox):
    closed = inbox.conversations["closed"]
    factories.ConversationFactory.create(constituent=closed.constituent)  # a newer, open thread
    with pytest.raises(triage.TriageRejected, match="already has an open conversation"):
        triage.conversation_reopen(conversation=closed, actor=inbox.staff)
    closed.refresh_from_db()
    assert closed.status == ConversationStatus.CLOSED
    assert events(closed, EventKind.STATUS) == []


def test_mark_read_clears_unread(inbox):
    c = inbox.conversations["water"]
    assert c.is_unread
    assert triage.conversation_mark_read(conversation=c, reader=inbox.staff)
    c.refresh_from_db()
    assert not c.is_unread
    assert not triage.conversation_mark_read(conversation=c, reader=inbox.staff)


def test_note_is_internal_and_moves_the_conversation_up(inbox):
    c = inbox.conversations["closed"]
    before = c.last_activity_at
    note = triage.note_add(conversation=c, body="  Called back, left a voicemail.  ", author=inbox.staff)
    assert (note.direction, note.channel, note.body) == (
        Direction.INTERNAL,
        Channel.NOTE,
        "Called back, left a voicemail.",
    )
    assert note.provider_sid is None
    assert note.sent_by_id == inbox.staff.pk
    c.refresh_from_db()
    assert c.last_activity_at > before
    with pytest.raises(triage.TriageRejected):
        triage.note_add(conversation=c, body="   ", author=inbox.staff)
    assert Message.objects.filter(conversation=c, channel=Channel.NOTE).count() == 1


def test_due_snoozes_wake_up(inbox):
    c = inbox.conversations["snoozed"]
    assert triage.snoozed_conversations_wake(now=timezone.now()) == 0
    assert triage.snoozed_conversations_wake(now=timezone.now() + timedelta(days=3)) == 1
    c.refresh_from_db()
    assert c.status == ConversationStatus.OPEN
    assert c.snoozed_until is None
    assert events(c, EventKind.STATUS)[0].data["reason"] == "snooze ended"


def test_profile_update_changes_only_profile_fields(inbox):
    constituent = inbox.conversations["water"].constituent
    changed = triage.constituent_profile_update(
        constituent=constituent, changes={"first_name": "Patricia", "in_district": True, "zip_code": "94110"}
    )
    assert sorted(changed) == ["first_name", "in_district", "zip_code"]
    stored = Constituent.objects.get(pk=constituent.pk)
    assert (stored.first_name, stored.in_district, stored.zip_code) == ("Patricia", True, "94110")
    with pytest.raises(triage.TriageRejected):
        triage.constituent_profile_update(constituent=constituent, changes={"phone": "+19999999999"})
    with pytest.raises(triage.TriageRejected):
        triage.constituent_profile_update(constituent=constituent, changes={"email": "not an email"})
    assert Constituent.objects.get(pk=constituent.pk).email == ""
