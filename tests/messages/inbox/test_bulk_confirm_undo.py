"""'All N matching' asks first and acts only on the set confirmed; a bulk close can be undone for a while,
reopening exactly what is still closed by it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from messages.models import BulkAction, Conversation, ConversationEvent, ConversationStatus, EventKind
from messages.selectors.inbox import inbox_conversations
from messages.services import bulk, triage
from messages.services.threading import conversation_id_for_inbound
from messages.views.bulk import UNDO_SESSION_KEY
from tests import factories
from tests.messages.inbox.conftest import add_conversation

OPEN_ONES = ("water", "rent", "voicemail", "optout")  # the default inbox: open or pending


def ids(inbox: Any, *names: str) -> list[int]:
    return [inbox.conversations[n].pk for n in names]


def status_of(inbox: Any, name: str) -> str:
    return Conversation.objects.get(pk=inbox.conversations[name].pk).status


def close_open_ones(inbox: Any) -> Any:
    selection = bulk.Selection.of_ids(ids(inbox, *OPEN_ONES, "closed"))
    return bulk.bulk_close(office=inbox.office, actor=inbox.staff, selection=selection)


# --- The confirmed set -------------------------------------------------------------------------------------


def test_all_matching_acts_only_on_the_confirmed_set(inbox):
    queryset = inbox_conversations(office=inbox.office).filter(status__in=["open", "pending"])
    shown = bulk.matching_fingerprint(office=inbox.office, queryset=queryset)
    assert shown.count == 4
    selection = bulk.Selection.of_matching(queryset, confirmed=shown)
    result = bulk.bulk_close(office=inbox.office, actor=inbox.staff, selection=selection)
    assert result.changed == 4


def test_a_count_that_changed_since_confirming_changes_nothing(inbox):
    queryset = inbox_conversations(office=inbox.office).filter(status__in=["open", "pending"])
    shown = bulk.matching_fingerprint(office=inbox.office, queryset=queryset)
    add_conversation(inbox.office, name="New Comer", phone="+12025550180", body="hello", minutes_ago=1)
    with pytest.raises(bulk.BulkSelectionChanged) as raised:
        bulk.bulk_close(
            office=inbox.office,
            actor=inbox.staff,
            selection=bulk.Selection.of_matching(queryset, confirmed=shown),
        )
    assert raised.value.now.count == 5
    assert (
        "matched 4 conversations when you were asked, and matches 5 conversations now" in raised.value.reason
    )
    assert Conversation.objects.filter(status="closed").count() == 1
    assert not BulkAction.objects.exists()


def test_the_same_count_of_other_conversations_changes_nothing(inbox):
    queryset = inbox_conversations(office=inbox.office).filter(status__in=["open", "pending"])
    shown = bulk.matching_fingerprint(office=inbox.office, queryset=queryset)
    add_conversation(inbox.office, name="New Comer", phone="+12025550180", body="hello", minutes_ago=1)
    triage.conversation_close(conversation=inbox.conversations["water"], actor=inbox.other_staff)
    with pytest.raises(bulk.BulkSelectionChanged) as raised:
        bulk.bulk_close(
            office=inbox.office,
            actor=inbox.staff,
            selection=bulk.Selection.of_matching(queryset, confirmed=shown),
        )
    assert "are not the ones you were asked about" in raised.value.reason
    assert status_of(inbox, "rent") == "open"


# --- The record and the undo -------------------------------------------------------------------------------


def test_a_bulk_close_is_recorded_with_the_conversations_it_changed(inbox):
    result = close_open_ones(inbox)
    record = BulkAction.objects.get(pk=result.bulk_action_id)
    assert (record.office_id, record.actor_id, record.action) == (inbox.office.pk, inbox.staff.pk, "close")
    assert sorted(record.conversation_ids) == sorted(ids(inbox, *OPEN_ONES))  # not the one already closed
    events = ConversationEvent.objects.filter(kind=EventKind.STATUS, data__bulk_action=record.pk)
    assert events.count() == 4


def test_a_bulk_close_that_changes_nothing_leaves_no_undo(inbox):
    result = bulk.bulk_close(
        office=inbox.office, actor=inbox.staff, selection=bulk.Selection.of_ids(ids(inbox, "closed"))
    )
    assert result.bulk_action_id is None
    assert not BulkAction.objects.exists()


def test_undo_reopens_exactly_what_is_still_closed_by_the_bulk_close(inbox, settings):
    pending = inbox.conversations["optout"]
    Conversation.objects.filter(pk=pending.pk).update(status=ConversationStatus.PENDING)
    snoozed = inbox.conversations["snoozed"]
    result = bulk.bulk_close(
        office=inbox.office,
        actor=inbox.staff,
        selection=bulk.Selection.of_ids(ids(inbox, *OPEN_ONES, "snoozed", "closed")),
    )
    # "water": a new text reopened it (the intake's own reopening, which records no event).
    water = inbox.conversations["water"]
    with transaction.atomic():
        conversation_id_for_inbound(
            office_id=inbox.office.pk, constituent_id=water.constituent_id, at=timezone.now()
        )
    # "rent": someone else reopened it and closed it again.
    rent = inbox.conversations["rent"]
    triage.conversation_reopen(conversation=rent, actor=inbox.other_staff)
    triage.conversation_close(conversation=rent, actor=inbox.other_staff)
    # "voicemail": a new text started a new thread for the constituent (past the reopen window).
    voicemail = inbox.conversations["voicemail"]
    settings.CONVERSATION_REOPEN_WINDOW_HOURS = 0
    with transaction.atomic():
        fresh = conversation_id_for_inbound(
            office_id=inbox.office.pk, constituent_id=voicemail.constituent_id, at=timezone.now()
        )
    assert fresh != voicemail.pk

    assert result.bulk_action_id is not None
    undone = bulk.bulk_close_undo(
        office=inbox.office, actor=inbox.admin, bulk_action_id=result.bulk_action_id
    )

    assert (
        undone.summary
        == "2 conversations reopened; 3 changed since the bulk close and were left as they are."
    )
    assert status_of(inbox, "optout") == ConversationStatus.PENDING  # back to what it was
    # Snoozed (for two more days) before the bulk close: snoozed again, until the same moment.
    back = Conversation.objects.get(pk=snoozed.pk)
    assert back.status == ConversationStatus.SNOOZED
    assert back.snoozed_until == snoozed.snoozed_until
    assert status_of(inbox, "water") == ConversationStatus.OPEN  # reopened by the text, left as it is
    assert status_of(inbox, "rent") == ConversationStatus.CLOSED  # closed by someone else since
    assert status_of(inbox, "voicemail") == ConversationStatus.CLOSED  # a newer thread is open
    assert status_of(inbox, "closed") == ConversationStatus.CLOSED  # was closed before the bulk close
    reopened = ConversationEvent.objects.filter(data__undoes_bulk_action=result.bulk_action_id)
    assert sorted(reopened.values_list("conversation_id", flat=True)) == sorted([pending.pk, snoozed.pk])
    event = reopened.get(conversation=pending)
    assert (event.kind, event.actor_id, event.data["from"], event.data["to"]) == (
        EventKind.STATUS,
        inbox.admin.pk,
        "closed",
        "pending",
    )
    assert event.data["reason"] == "undoing a bulk close"
    record = BulkAction.objects.get(pk=result.bulk_action_id)
    assert record.undone_by_id == inbox.admin.pk
    assert record.undone_at is not None


def test_a_reopened_conversation_is_told_in_the_timeline(inbox):
    result = close_open_ones(inbox)
    bulk.bulk_close_undo(office=inbox.office, actor=inbox.admin, bulk_action_id=result.bulk_action_id)
    page = inbox.client_for(inbox.staff).get(f"/o/alpha/conversations/{inbox.conversations['water'].pk}/")
    assert "reopened the conversation (undoing a bulk close)" in page.content.decode()


def test_undo_works_once(inbox):
    result = close_open_ones(inbox)
    bulk.bulk_close_undo(office=inbox.office, actor=inbox.staff, bulk_action_id=result.bulk_action_id)
    bulk.bulk_close(
        office=inbox.office, actor=inbox.staff, selection=bulk.Selection.of_ids(ids(inbox, "water"))
    )
    with pytest.raises(bulk.BulkRejected, match="already undone"):
        bulk.bulk_close_undo(office=inbox.office, actor=inbox.staff, bulk_action_id=result.bulk_action_id)
    assert status_of(inbox, "water") == ConversationStatus.CLOSED


def test_undo_is_refused_once_the_window_has_passed(inbox, settings):
    settings.BULK_UNDO_SECONDS = 60
    result = close_open_ones(inbox)
    BulkAction.objects.filter(pk=result.bulk_action_id).update(
        created_at=timezone.now() - timedelta(seconds=61)
    )
    with pytest.raises(bulk.BulkRejected, match="Too late to undo"):
        bulk.bulk_close_undo(office=inbox.office, actor=inbox.staff, bulk_action_id=result.bulk_action_id)
    assert set(Conversation.objects.values_list("status", flat=True)) == {"closed", "snoozed"}


def test_another_offices_bulk_close_cannot_be_undone(inbox):
    other = factories.OfficeFactory.create(slug="other")
    foreign = factories.ConversationFactory.create(constituent__office=other)
    result = bulk.bulk_close(office=other, actor=None, selection=bulk.Selection.of_ids([foreign.pk]))
    assert result.bulk_action_id is not None
    with pytest.raises(bulk.BulkSelectionNotFound):
        bulk.bulk_close_undo(office=inbox.office, actor=inbox.staff, bulk_action_id=result.bulk_action_id)
    response = inbox.client_for(inbox.staff).post(f"/o/alpha/bulk/{result.bulk_action_id}/undo/")
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == ConversationStatus.CLOSED
    assert BulkAction.objects.get(pk=result.bulk_action_id).undone_at is None


# --- The views: ask, confirm, undo -------------------------------------------------------------------------

MATCHING = {"action": "close", "scope": "matching", "f_status": "active", "next": "/o/alpha/"}


def test_all_matching_asks_first_stating_the_number_and_the_filter(inbox):
    client = inbox.client_for(inbox.staff)
    response = client.post("/o/alpha/bulk/", {**MATCHING, "f_q": "water"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "Close 1 conversation?" in body
    assert "This filter matches <strong>1 conversation</strong> now." in body
    assert "<dt>Search</dt><dd>“water”</dd>" in body
    assert "<dt>Status</dt><dd>Open or pending</dd>" in body
    assert "You can undo the close for 10 minutes" in body
    assert Conversation.objects.filter(status="closed").count() == 1  # nothing yet
    assert response.context["fingerprint"].count == 1


def test_confirming_acts_and_offers_an_undo_which_reopens_them(inbox):
    client = inbox.client_for(inbox.staff)
    asked = client.post("/o/alpha/bulk/", MATCHING)
    assert "Close 4 conversations?" in asked.content.decode()
    done = client.post("/o/alpha/bulk/", {**MATCHING, "confirm": "1", **asked.context["fingerprint_fields"]})
    assert done.status_code == 302
    inbox_page = client.get("/o/alpha/", {"status": "any"})
    body = inbox_page.content.decode()
    assert "4 conversations closed." in body
    assert "Undo: reopen 4 conversations" in body
    offer = client.session[UNDO_SESSION_KEY]
    response = client.post(f"/o/alpha/bulk/{offer['id']}/undo/", {"next": "/o/alpha/"}, follow=True)
    body = response.content.decode()
    assert "4 conversations reopened." in body
    assert "Undo: reopen" not in body
    assert set(
        Conversation.objects.filter(pk__in=ids(inbox, *OPEN_ONES)).values_list("status", flat=True)
    ) == {"open"}


def test_a_changed_count_is_said_and_asked_again(inbox):
    client = inbox.client_for(inbox.staff)
    asked = client.post("/o/alpha/bulk/", MATCHING)
    add_conversation(inbox.office, name="New Comer", phone="+12025550180", body="hello", minutes_ago=1)
    again = client.post("/o/alpha/bulk/", {**MATCHING, "confirm": "1", **asked.context["fingerprint_fields"]})
    body = again.content.decode()
    assert again.status_code == 200
    assert "matched 4 conversations when you were asked, and matches 5 conversations now" in body
    assert "Close 5 conversations?" in body
    assert Conversation.objects.filter(status="closed").count() == 1
    done = client.post(
        "/o/alpha/bulk/", {**MATCHING, "confirm": "1", **again.context["fingerprint_fields"]}, follow=True
    )
    assert "5 conversations closed." in done.content.decode()


@pytest.mark.parametrize(
    "tampered",
    [
        {"confirm": "1"},
        {"confirm": "1", "expected_count": "4", "expected_digest": "not-hex"},
        {"confirm": "1", "expected_count": "-4", "expected_digest": "0" * 24},
        {"confirm": "yes", "expected_count": "4", "expected_digest": "0" * 24},
    ],
)
def test_a_missing_or_malformed_confirmation_only_asks(inbox, tampered):
    response = inbox.client_for(inbox.staff).post("/o/alpha/bulk/", {**MATCHING, **tampered})
    assert response.status_code == 200
    assert "Close 4 conversations?" in response.content.decode()
    assert Conversation.objects.filter(status="closed").count() == 1


def test_a_forged_confirmation_of_another_set_changes_nothing(inbox):
    response = inbox.client_for(inbox.staff).post(
        "/o/alpha/bulk/", {**MATCHING, "confirm": "1", "expected_count": "4", "expected_digest": "0" * 24}
    )
    assert "matches 4 conversations now" not in response.content.decode()  # same count, other set
    assert "are not the ones you were asked about" in response.content.decode()
    assert Conversation.objects.filter(status="closed").count() == 1


def test_the_confirmation_carries_the_action_and_its_choice(inbox):
    client = inbox.client_for(inbox.staff)
    form = {**MATCHING, "action": "tag", "tag": str(inbox.housing.pk)}
    asked = client.post("/o/alpha/bulk/", form)
    assert "Add the tag “Housing” to 4 conversations?" in asked.content.decode()
    done = client.post(
        "/o/alpha/bulk/", {**form, "confirm": "1", **asked.context["fingerprint_fields"]}, follow=True
    )
    assert "3 conversations tagged “Housing”; 1 already had it." in done.content.decode()
    assert not BulkAction.objects.exists()  # only a close is undoable


def test_selected_rows_are_not_asked_about(inbox):
    response = inbox.client_for(inbox.staff).post(
        "/o/alpha/bulk/", {"action": "close", "ids": ids(inbox, "water"), "next": "/o/alpha/"}, follow=True
    )
    assert "1 conversation closed." in response.content.decode()
    assert "Undo: reopen 1 conversation" in response.content.decode()


def test_the_undo_offer_ends_with_the_window(inbox, settings):
    client = inbox.client_for(inbox.staff)
    client.post("/o/alpha/bulk/", {"action": "close", "ids": ids(inbox, "water")})
    session = client.session
    offer = session[UNDO_SESSION_KEY]
    offer["until"] = (timezone.now() - timedelta(seconds=1)).isoformat()
    session[UNDO_SESSION_KEY] = offer
    session.save()
    assert "Undo: reopen" not in client.get("/o/alpha/").content.decode()


def test_an_expired_undo_says_so(inbox):
    client = inbox.client_for(inbox.staff)
    client.post("/o/alpha/bulk/", {"action": "close", "ids": ids(inbox, "water")})
    record = BulkAction.objects.get()
    BulkAction.objects.update(created_at=timezone.now() - timedelta(hours=1))
    response = client.post(f"/o/alpha/bulk/{record.pk}/undo/", {"next": "/o/alpha/"}, follow=True)
    assert "Nothing was changed. Too late to undo that bulk close" in response.content.decode()
    assert status_of(inbox, "water") == ConversationStatus.CLOSED


def test_officials_cannot_undo(inbox):
    result = close_open_ones(inbox)
    response = inbox.client_for(inbox.official).post(f"/o/alpha/bulk/{result.bulk_action_id}/undo/")
    assert response.status_code == 403
    assert status_of(inbox, "water") == ConversationStatus.CLOSED


def test_a_later_status_event_leaves_the_conversation_closed(inbox):
    """Each rule on its own: a status event after the bulk close's own means someone changed it since, even
    if its closed_at was left as the bulk close set it (a writer that only records the event)."""
    result = close_open_ones(inbox)
    water = inbox.conversations["water"]
    ConversationEvent.objects.create(
        office=inbox.office,
        conversation=water,
        kind=EventKind.STATUS,
        actor=inbox.other_staff,
        data={"from": "closed", "to": "closed"},
    )
    undone = bulk.bulk_close_undo(
        office=inbox.office, actor=inbox.staff, bulk_action_id=result.bulk_action_id
    )
    assert undone.changed == 3
    assert status_of(inbox, "water") == ConversationStatus.CLOSED


def test_a_close_with_no_event_leaves_the_conversation_closed(inbox):
    """A change that recorded no event (a reopening by a text, then a close by an edit outside the services)
    shows in closed_at: not the bulk close's any more, so it is left alone."""
    result = close_open_ones(inbox)
    Conversation.objects.filter(pk=inbox.conversations["water"].pk).update(
        closed_at=timezone.now() + timedelta(seconds=1)
    )
    undone = bulk.bulk_close_undo(
        office=inbox.office, actor=inbox.staff, bulk_action_id=result.bulk_action_id
    )
    assert undone.changed == 3
    assert status_of(inbox, "water") == ConversationStatus.CLOSED
