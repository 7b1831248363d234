"""What a constituent said, and what happened to the thread, cannot be rewritten in the Django admin."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from constituents.models import ConsentEvent, SmsConsent
from messages.models import ConversationEvent, Direction, EventKind, Message
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
    return {"message": message, "conversationevent": event, "consentevent": consent}


@pytest.mark.parametrize(
    ("app", "model"),
    [
        ("civicdesk_messages", "message"),
        ("civicdesk_messages", "conversationevent"),
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
