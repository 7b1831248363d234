"""messages.services.bulk: atomic, office-checked actions over selections and whole filters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from messages.models import Conversation, ConversationEvent, ConversationStatus, ConversationTag, EventKind
from messages.selectors.inbox import inbox_conversations
from messages.services import bulk
from tests import factories
from tests.messages.inbox.conftest import Inbox


def ids(inbox: Inbox, *names: str) -> list[int]:
    return [inbox.conversations[n].pk for n in names]


def test_bulk_tag_reports_how_many_were_tagged(inbox):
    selection = bulk.Selection.of_ids(ids(inbox, "water", "rent", "voicemail"))
    result = bulk.bulk_tag(office=inbox.office, actor=inbox.staff, selection=selection, tag=inbox.health)
    # "water" already had the tag.
    assert (result.selected, result.changed) == (3, 2)
    assert result.summary == "2 conversations tagged “Health care”; 1 already had it."
    assert ConversationTag.objects.filter(tag=inbox.health).count() == 3
    assert ConversationEvent.objects.filter(kind=EventKind.TAGGED).count() == 2


def test_bulk_untag(inbox):
    selection = bulk.Selection.of_ids(ids(inbox, "water", "rent"))
    result = bulk.bulk_untag(office=inbox.office, actor=inbox.staff, selection=selection, tag=inbox.health)
    assert (result.changed, result.summary) == (
        1,
        "1 conversation untagged “Health care”; 1 did not have it.",
    )
    assert not ConversationTag.objects.filter(tag=inbox.health).exists()


def test_a_foreign_id_rejects_the_whole_action(inbox):
    foreign = factories.ConversationFactory.create()
    selection = bulk.Selection.of_ids([*ids(inbox, "water", "rent"), foreign.pk])
    with pytest.raises(bulk.BulkSelectionNotFound):
        bulk.bulk_close(office=inbox.office, actor=inbox.staff, selection=selection)
    assert Conversation.objects.filter(status=ConversationStatus.CLOSED).count() == 1  # only the fixture's
    assert not ConversationEvent.objects.exists()
    foreign.refresh_from_db()
    assert foreign.status == ConversationStatus.OPEN


def test_a_missing_id_rejects_the_whole_action(inbox):
    with pytest.raises(bulk.BulkSelectionNotFound):
        bulk.bulk_tag(
            office=inbox.office,
            actor=inbox.staff,
            selection=bulk.Selection.of_ids([*ids(inbox, "water"), 987654321]),
            tag=inbox.housing,
        )
    assert not inbox.conversations["water"].tags.filter(pk=inbox.housing.pk).exists()


def test_another_offices_tag_is_refused(inbox):
    with pytest.raises(bulk.BulkSelectionNotFound):
        bulk.bulk_tag(
            office=inbox.office,
            actor=inbox.staff,
            selection=bulk.Selection.of_ids(ids(inbox, "water")),
            tag=factories.TagFactory.create(name="Housing"),
        )


def test_an_empty_selection_is_refused(inbox):
    with pytest.raises(bulk.BulkRejected, match="Select at least one"):
        bulk.bulk_close(office=inbox.office, actor=inbox.staff, selection=bulk.Selection.of_ids([]))


def test_bulk_close_over_everything_matching_a_filter(inbox):
    matching = inbox_conversations(office=inbox.office).filter(status__in=["open", "pending"])
    result = bulk.bulk_close(
        office=inbox.office, actor=inbox.staff, selection=bulk.Selection.of_matching(matching)
    )
    assert result.summary == "4 conversations closed."
    assert set(Conversation.objects.values_list("status", flat=True)) == {"closed", "snoozed"}
    assert ConversationEvent.objects.filter(kind=EventKind.STATUS, data__to="closed").count() == 4


def test_matching_never_reaches_another_office(inbox):
    other = factories.ConversationFactory.create()
    # A queryset that is not office-scoped still only acts on this office.
    selection = bulk.Selection.of_matching(Conversation.objects.all())
    bulk.bulk_close(office=inbox.office, actor=inbox.staff, selection=selection)
    other.refresh_from_db()
    assert other.status == ConversationStatus.OPEN


def test_bulk_assign_to_a_member_and_to_nobody(inbox):
    selection = bulk.Selection.of_ids(ids(inbox, "water", "rent"))
    result = bulk.bulk_assign(
        office=inbox.office, actor=inbox.admin, selection=selection, assignee=inbox.staff
    )
    assert result.summary == "1 conversation assigned to alice; 1 already were."
    result = bulk.bulk_assign(office=inbox.office, actor=inbox.admin, selection=selection, assignee=None)
    assert result.changed == 2
    assert not Conversation.objects.filter(
        pk__in=ids(inbox, "water", "rent"), assignee__isnull=False
    ).exists()
    with pytest.raises(bulk.BulkRejected):
        bulk.bulk_assign(office=inbox.office, actor=inbox.admin, selection=selection, assignee=inbox.official)


def test_bulk_move_queue(inbox):
    selection = bulk.Selection.of_ids(ids(inbox, "water", "rent"))
    result = bulk.bulk_move_queue(
        office=inbox.office, actor=inbox.staff, selection=selection, queue=inbox.press
    )
    assert result.changed == 2
    assert set(
        Conversation.objects.filter(pk__in=ids(inbox, "water", "rent")).values_list("queue", flat=True)
    ) == {inbox.press.pk}
    with pytest.raises(bulk.BulkSelectionNotFound):
        bulk.bulk_move_queue(
            office=inbox.office, actor=inbox.staff, selection=selection, queue=factories.QueueFactory.create()
        )


def test_bulk_snooze_leaves_closed_conversations(inbox):
    until = timezone.now() + timedelta(days=1)
    selection = bulk.Selection.of_ids(ids(inbox, "water", "closed"))
    result = bulk.bulk_snooze(office=inbox.office, actor=inbox.staff, selection=selection, until=until)
    assert result.summary == "1 conversation snoozed; 1 closed, left as they were."
    inbox.conversations["water"].refresh_from_db()
    assert inbox.conversations["water"].snoozed_until == until
    with pytest.raises(bulk.BulkRejected):
        bulk.bulk_snooze(
            office=inbox.office,
            actor=inbox.staff,
            selection=selection,
            until=timezone.now() - timedelta(hours=1),
        )


def test_large_selections_are_chunked(inbox, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK", 2)
    result = bulk.bulk_tag(
        office=inbox.office,
        actor=inbox.staff,
        selection=bulk.Selection.of_matching(inbox_conversations(office=inbox.office)),
        tag=inbox.housing,
    )
    assert (result.selected, result.changed) == (6, 5)
    assert ConversationTag.objects.filter(tag=inbox.housing).count() == 6
