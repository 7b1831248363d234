"""What a constituent said, and what happened to the thread, cannot be rewritten in the Django admin."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from constituents.models import ConsentEvent, SmsConsent
from messages.models import BulkAction, ConversationEvent, Direction, EventKind, Message, MessageCorrection
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def records(office: Any) -> dict[str, Any]:
    conversation: Any = factories.ConversationFactory.create(office=office)
    message: Any = factories.MessageFactory.create(
        conversation=conversation, direction=Direction.INBOUND, body="What I really wrote"
    )
    event = ConversationEvent.objects.create(
        office=office, conversation=conversation, kind=EventKind.STATUS, data={"to": "closed"}
    )
    consent = ConsentEvent.objects.create(
        office=office,
        constituent=conversation.constituent,
        previous=SmsConsent.IMPLIED,
        new=SmsConsent.OPTED_OUT,
        source="keyword",
        keyword="STOP",
    )
    bulk = BulkAction.objects.create(office=office, action="close", conversation_ids=[conversation.pk])
    return {"message": message, "conversationevent": event, "consentevent": consent, "bulkaction": bulk}


@pytest.mark.parametrize(
    ("app", "model"),
    [
        ("civicdesk_messages", "message"),
        ("civicdesk_messages", "conversationevent"),
        ("civicdesk_messages", "bulkaction"),
        ("constituents", "consentevent"),
    ],
)
def test_even_a_superuser_can_only_view_records_in_the_admin(admin_client: Client, records, app, model):
    obj = records[model]
    change_url = f"/admin/{app}/{model}/{obj.pk}/change/"

    page = admin_client.get(change_url)
    assert page.status_code == 200  # still shown
    assert 'name="_save"' not in page.content.decode()
    assert admin_client.post(change_url, {"body": "Something else"}).status_code == 403
    assert admin_client.get(f"/admin/{app}/{model}/add/").status_code == 403
    assert admin_client.post(f"/admin/{app}/{model}/{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    assert type(obj).objects.filter(pk=obj.pk).exists()


def test_a_message_body_posted_to_the_admin_is_not_stored(admin_client: Client, records):
    message = records["message"]
    admin_client.post(f"/admin/civicdesk_messages/message/{message.pk}/change/", {"body": "Rewritten"})
    assert Message.objects.get(pk=message.pk).body == "What I really wrote"


# --- Corrections: a redaction goes through messages.services.corrections, never through an edit ---


@pytest.fixture
def office_admin_client(office: Any) -> Client:
    admin_user = factories.MembershipFactory.create(
        office=office, role="admin", user__username="staff2", user__is_staff=True
    ).user
    client = Client()
    client.force_login(admin_user)
    return client


def _redact_url(message: Any) -> str:
    return f"/admin/civicdesk_messages/message/{message.pk}/redact/"


def test_an_office_admin_redacts_a_message_from_its_admin_page_giving_a_reason(
    office_admin_client: Client, records
) -> None:
    message = records["message"]
    page = office_admin_client.get(f"/admin/civicdesk_messages/message/{message.pk}/change/")
    assert page.status_code == 200
    assert f'href="{_redact_url(message)}"' in page.content.decode()
    assert office_admin_client.get(_redact_url(message)).status_code == 200

    missing_reason = office_admin_client.post(_redact_url(message), {"reason": " ", "replacement": ""})
    assert missing_reason.status_code == 200
    assert "This field is required" in missing_reason.content.decode()
    assert Message.objects.get(pk=message.pk).body == "What I really wrote"

    done = office_admin_client.post(_redact_url(message), {"reason": "Home address", "replacement": ""})
    assert done.status_code == 302
    assert done["Location"] == f"/admin/civicdesk_messages/message/{message.pk}/change/"
    redacted = Message.objects.get(pk=message.pk)
    assert redacted.body == "[redacted]"
    assert redacted.details["redaction"]["by"] == "staff2"
    correction = MessageCorrection.objects.get(message=message)
    assert (correction.by_username, correction.reason) == ("staff2", "Home address")
    after = office_admin_client.get(f"/admin/civicdesk_messages/message/{message.pk}/change/")
    assert _redact_url(message) not in after.content.decode()  # done once, offered no more
    history = office_admin_client.get(f"/admin/civicdesk_messages/message/{message.pk}/history/")
    assert "Redacted: Home address" in history.content.decode()


def test_a_redaction_the_service_refuses_is_shown_as_a_form_error(office_admin_client: Client, records):
    message = records["message"]
    Message.objects.filter(pk=message.pk).update(channel="voicemail")
    response = office_admin_client.post(_redact_url(message), {"reason": "Home address"})
    assert response.status_code == 200
    assert "recording holds the words" in response.content.decode()
    assert Message.objects.get(pk=message.pk).body == "What I really wrote"
    assert not MessageCorrection.objects.exists()


def test_another_offices_message_cannot_be_redacted_or_its_correction_seen(records) -> None:
    message = records["message"]
    stranger = factories.MembershipFactory.create(role="admin", user__is_staff=True).user
    client = Client()
    client.force_login(stranger)
    assert client.get(_redact_url(message)).status_code == 404
    assert client.post(_redact_url(message), {"reason": "Hijack"}).status_code == 404
    assert client.get("/admin/civicdesk_messages/message/nonsense/redact/").status_code == 404
    assert Message.objects.get(pk=message.pk).body == "What I really wrote"
    assert not MessageCorrection.objects.exists()


def test_staff_without_admin_access_cannot_redact(staff_client: Client, records) -> None:
    message = records["message"]
    response = staff_client.post(_redact_url(message), {"reason": "Home address"})
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert Message.objects.get(pk=message.pk).body == "What I really wrote"


def test_the_original_text_is_kept_but_shown_only_to_superusers(
    office_admin_client: Client, admin_client: Client, records
) -> None:
    message = records["message"]
    office_admin_client.post(_redact_url(message), {"reason": "Home address"})
    correction = MessageCorrection.objects.get(message=message)
    assert correction.original_body == "What I really wrote"
    url = f"/admin/civicdesk_messages/messagecorrection/{correction.pk}/change/"

    as_office_admin = office_admin_client.get(url)
    assert as_office_admin.status_code == 200
    assert "Home address" in as_office_admin.content.decode()
    assert "What I really wrote" not in as_office_admin.content.decode()
    assert (
        "What I really wrote"
        not in office_admin_client.get(
            f"/admin/civicdesk_messages/message/{message.pk}/change/"
        ).content.decode()
    )

    as_superuser = admin_client.get(url)
    assert "What I really wrote" in as_superuser.content.decode()
    assert admin_client.post(url, {"original_body": "Rewritten"}).status_code == 403
    assert MessageCorrection.objects.get(pk=correction.pk).original_body == "What I really wrote"
