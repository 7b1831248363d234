""" "Snooze until" ends by itself: the periodic task, its beat entry, and what the inbox shows afterwards."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

import messages.tasks
from civicdesk.celery import app as celery_app
from messages.filters import ConversationFilter
from messages.models import ConversationEvent, ConversationStatus, EventKind
from messages.selectors.inbox import inbox_conversations, inbox_lookups
from messages.selectors.rail import rail_counts
from tests import factories
from tests.messages.inbox.conftest import Inbox, add_conversation


def snoozed(office: Any, name: str, phone: str, *, until: datetime) -> Any:
    return add_conversation(
        office,
        name=name,
        phone=phone,
        body="Following up",
        minutes_ago=60,
        status=ConversationStatus.SNOOZED,
        snoozed_until=until,
    )


def status_events(conversation: Any) -> list[ConversationEvent]:
    return list(ConversationEvent.objects.filter(conversation=conversation, kind=EventKind.STATUS))


def open_names(inbox: Inbox) -> list[str]:
    lookups = inbox_lookups(office=inbox.office)
    filterset = ConversationFilter(
        {}, inbox_conversations(office=inbox.office), office=inbox.office, user=inbox.staff, lookups=lookups
    )
    assert filterset.is_valid(), filterset.errors
    return [c.constituent.first_name for c in filterset.qs]


def test_wake_task_reopens_due_snoozes_of_every_office_and_only_those(inbox):
    now = timezone.now()
    other_office = factories.OfficeFactory.create(slug="beta")
    # Look-alike rows in the other office: same phone, same name.
    due_here = snoozed(inbox.office, "Max Due", "+12025550150", until=now - timedelta(minutes=1))
    due_there = snoozed(other_office, "Max Due", "+12025550150", until=now - timedelta(seconds=1))
    later_there = snoozed(other_office, "Kim Later", "+12025550151", until=now + timedelta(hours=1))
    later_here = inbox.conversations["snoozed"]  # until two days from now

    assert messages.tasks.snoozed_conversations_wake() == 2

    for conversation, office in ((due_here, inbox.office), (due_there, other_office)):
        conversation.refresh_from_db()
        assert (conversation.status, conversation.snoozed_until) == (ConversationStatus.OPEN, None)
        [event] = status_events(conversation)
        assert event.office_id == office.pk
        assert event.actor_id is None
        assert event.data == {"from": "snoozed", "to": "open", "reason": "snooze ended"}
    for conversation in (later_here, later_there):
        before = conversation.snoozed_until
        conversation.refresh_from_db()
        assert (conversation.status, conversation.snoozed_until) == (ConversationStatus.SNOOZED, before)
        assert status_events(conversation) == []
    assert messages.tasks.snoozed_conversations_wake() == 0  # nothing left: a repeat changes nothing


def test_woken_conversation_shows_as_open_in_the_list_and_the_cached_rail(
    inbox, django_capture_on_commit_callbacks
):
    lookups = inbox_lookups(office=inbox.office)
    snoozed(inbox.office, "Max Due", "+12025550150", until=timezone.now() - timedelta(minutes=1))
    before = rail_counts(office=inbox.office, user=inbox.staff, lookups=lookups)  # now cached
    assert "Max" not in open_names(inbox)

    with django_capture_on_commit_callbacks(execute=True):
        assert messages.tasks.snoozed_conversations_wake() == 1

    after = rail_counts(office=inbox.office, user=inbox.staff, lookups=lookups)
    assert (after.open, after.unassigned, after.snoozed) == (
        before.open + 1,
        before.unassigned + 1,
        before.snoozed - 1,
    )
    assert "Max" in open_names(inbox)


def test_wake_task_works_through_more_due_snoozes_than_one_batch(inbox, monkeypatch):
    monkeypatch.setattr(messages.tasks, "SNOOZE_WAKE_BATCH", 2)
    past = timezone.now() - timedelta(minutes=5)
    due = [snoozed(inbox.office, f"Due Person{i}", f"+1202555016{i}", until=past) for i in range(5)]
    assert messages.tasks.snoozed_conversations_wake() == 5
    for conversation in due:
        conversation.refresh_from_db()
        assert conversation.status == ConversationStatus.OPEN


def test_beat_runs_the_wake_task_every_snooze_wake_interval():
    entry = settings.CELERY_BEAT_SCHEDULE["snoozed-conversations-wake"]
    assert entry["task"] == messages.tasks.snoozed_conversations_wake.name
    assert entry["task"] in celery_app.tasks
    assert entry["schedule"] == float(settings.SNOOZE_WAKE_INTERVAL_SECONDS) == 60.0


def test_every_beat_entry_names_a_registered_task():
    celery_app.loader.import_default_modules()  # what a worker does at start: autodiscovers every app's tasks
    registered = set(celery_app.tasks)
    missing = {
        name: entry["task"]
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
        if entry["task"] not in registered
    }
    assert missing == {}
