"""Redacting a message: the text goes from every place the office reads it, and the change is never silent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.postgres.search import SearchQuery
from django.test import Client

from messages.models import (
    Channel,
    Conversation,
    ConversationEvent,
    EventKind,
    Message,
    MessageCorrection,
)
from messages.services.corrections import CorrectionRejected, message_redact
from messages.services.threading import preview_text
from tests import factories

pytestmark = pytest.mark.django_db

SECRET = "My social security number is 078-05-1120 please help"


@pytest.fixture
def staff2(office: Any) -> Any:
    return factories.MembershipFactory.create(office=office, role="admin", user__username="staff2").user


@pytest.fixture
def message(office: Any) -> Message:
    conversation = factories.ConversationFactory.create(office=office, constituent__office=office)
    message = factories.MessageFactory.create(
        conversation=conversation, body=SECRET, details={"opt_out_type": "", "num_media_declared": 0}
    )
    Conversation.objects.filter(pk=conversation.pk).update(  # the summary of its latest message: this one
        last_message_preview=preview_text(SECRET, "sms"),
        last_activity_at=message.created_at,
        last_message_channel=message.channel,
    )
    return message


def _state(message: Message) -> tuple[Any, ...]:
    fresh = Message.objects.get(pk=message.pk)
    conversation = Conversation.objects.get(pk=message.conversation_id)
    return (
        fresh.body,
        fresh.details,
        conversation.last_message_preview,
        MessageCorrection.objects.count(),
        ConversationEvent.objects.count(),
    )


def test_a_redaction_replaces_the_text_everywhere_and_records_who_when_why_and_what(
    office: Any, staff2: Any, message: Message
) -> None:
    assert Message.objects.filter(pk=message.pk, search_document=SearchQuery("security")).exists()

    correction = message_redact(office=office, message_id=message.pk, by=staff2, reason="  An SSN\n ")

    message.refresh_from_db()
    assert message.body == "[redacted]"
    assert message.details["redaction"]["by"] == "staff2"
    assert message.details["redaction"]["reason"] == "An SSN"
    assert message.details["num_media_declared"] == 0  # the rest of the details stay
    assert Conversation.objects.get(pk=message.conversation_id).last_message_preview == "[redacted]"
    assert not Message.objects.filter(pk=message.pk, search_document=SearchQuery("security")).exists()
    assert (correction.by_id, correction.by_username, correction.reason) == (staff2.pk, "staff2", "An SSN")
    assert (correction.original_body, correction.replacement) == (SECRET, "[redacted]")
    assert correction.office_id == office.pk
    event = ConversationEvent.objects.get(conversation_id=message.conversation_id, kind=EventKind.REDACTED)
    assert (event.actor_id, event.data) == (staff2.pk, {"message_id": message.pk, "reason": "An SSN"})
    assert SECRET not in str(event.data)


def test_the_preview_of_a_later_message_is_left_alone(office: Any, staff2: Any, message: Message) -> None:
    Conversation.objects.filter(pk=message.conversation_id).update(  # a staff reply came after it
        last_message_preview="Thanks, we will call",
        last_activity_at=message.created_at + timedelta(minutes=5),
    )
    message_redact(office=office, message_id=message.pk, by=staff2, reason="An SSN", replacement="[removed]")
    assert Message.objects.get(pk=message.pk).body == "[removed]"
    assert Conversation.objects.get(pk=message.conversation_id).last_message_preview == "Thanks, we will call"


def test_another_offices_message_is_not_found_and_nothing_changes(staff2: Any, message: Message) -> None:
    other = factories.OfficeFactory.create()
    before = _state(message)
    with pytest.raises(Message.DoesNotExist):
        message_redact(office=other, message_id=message.pk, by=staff2, reason="An SSN")
    with pytest.raises(Message.DoesNotExist):
        message_redact(office=other, message_id=999_999_999, by=staff2, reason="An SSN")
    assert _state(message) == before


def test_redacting_twice_changes_nothing_the_second_time(office: Any, staff2: Any, message: Message) -> None:
    first = message_redact(office=office, message_id=message.pk, by=staff2, reason="An SSN")
    after_first = _state(message)
    again = message_redact(office=office, message_id=message.pk, by=staff2, reason="Other", replacement="x")
    assert again.pk == first.pk
    assert _state(message) == after_first
    assert MessageCorrection.objects.filter(message_id=message.pk).count() == 1


@pytest.mark.parametrize(
    ("change", "reason", "error"),
    [
        ({}, "   ", "Give the reason"),
        ({}, "x" * 501, "500 characters"),
        ({"channel": Channel.VOICEMAIL}, "An SSN", "recording holds the words"),
        ({"channel": Channel.CALL}, "An SSN", "recording holds the words"),
        ({"body": ""}, "An SSN", "no text to redact"),
        ({"processed_at": None}, "An SSN", "still being processed"),
    ],
)
def test_a_redaction_that_cannot_be_made_says_why_and_writes_nothing(
    office: Any, staff2: Any, message: Message, change: dict[str, Any], reason: str, error: str
) -> None:
    Message.objects.filter(pk=message.pk).update(**change)
    before = _state(message)
    with pytest.raises(CorrectionRejected, match=error):
        message_redact(office=office, message_id=message.pk, by=staff2, reason=reason)
    assert _state(message) == before


def test_a_failure_part_way_leaves_no_half_written_redaction(
    office: Any, staff2: Any, message: Message, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _state(message)

    def fail(**kwargs: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(ConversationEvent.objects, "create", fail)
    with pytest.raises(RuntimeError):
        message_redact(office=office, message_id=message.pk, by=staff2, reason="An SSN")
    assert _state(message) == before


def test_the_thread_shows_who_redacted_the_message_when_and_why(
    office: Any, staff2: Any, message: Message, staff_client: Client
) -> None:
    message_redact(office=office, message_id=message.pk, by=staff2, reason="Contained an SSN")
    page = staff_client.get(f"/o/{office.slug}/conversations/{message.conversation_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "078-05-1120" not in html
    assert "[redacted]" in html
    assert "Redacted by staff2 on " in html
    assert ": Contained an SSN</p>" in html
    assert "redacted a message: Contained an SSN" in html  # the thread's event line, seen by the live poll
