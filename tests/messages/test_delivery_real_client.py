"""Delivery through the real twilio SDK (SMS_BACKEND="twilio") against a local fake Twilio REST API that
injects 201, 400/21610, 429, 500 and timeouts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from constituents.models import SmsConsent
from messages.models import Message, MessageStatus
from messages.services import delivery
from messages.services.replies import reply_send
from messages.twilio.errors import RetryableSendError
from tests import factories
from tests.fakes.fake_twilio import ROUTE_CREATE_MESSAGE, FakeTwilio, Scripted

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake(twilio_api: FakeTwilio, settings: Any) -> FakeTwilio:
    settings.SMS_BACKEND = "twilio"
    return twilio_api


@pytest.fixture
def queued(phone_number: Any, staff_user: Any) -> Message:
    constituent = factories.ConstituentFactory.create(office=phone_number.office, phone="+14155550123")
    conversation = factories.ConversationFactory.create(constituent=constituent)
    return reply_send(conversation=conversation, body="We received your message.", sent_by=staff_user)


def creates(fake: FakeTwilio) -> list[Any]:
    return fake.requests_for(ROUTE_CREATE_MESSAGE)


def test_201_stores_twilio_sid_and_posts_the_right_form(fake: FakeTwilio, queued: Message) -> None:
    assert delivery.message_deliver(message_id=queued.pk).sent
    queued.refresh_from_db()
    assert queued.provider_sid in fake.messages
    (request,) = creates(fake)
    assert request.form["To"] == ["+14155550123"]
    assert request.form["From"] == ["+14155550100"]
    assert request.form["Body"] == ["We received your message."]
    assert request.form["StatusCallback"] == ["https://civicdesk.test/webhooks/twilio/sms/status/"]


def test_messaging_service_sid_is_used_instead_of_from_when_set(
    fake: FakeTwilio, queued: Message, phone_number: Any
) -> None:
    phone_number.messaging_service_sid = "MG" + "a" * 32
    phone_number.save()
    delivery.message_deliver(message_id=queued.pk)
    (request,) = creates(fake)
    assert request.form["MessagingServiceSid"] == ["MG" + "a" * 32]
    assert "From" not in request.form


def test_400_21610_fails_with_reason_and_opts_out(fake: FakeTwilio, queued: Message) -> None:
    fake.script(
        Scripted.twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"),
        route=ROUTE_CREATE_MESSAGE,
    )
    delivery.message_deliver(message_id=queued.pk)
    queued.refresh_from_db()
    assert (queued.status, queued.error_code) == (MessageStatus.FAILED, 21610)
    assert "opted out" in queued.error_message.lower()
    constituent = queued.conversation.constituent
    constituent.refresh_from_db()
    assert constituent.sms_consent == SmsConsent.OPTED_OUT


@pytest.mark.parametrize(
    "scripted", [Scripted.twilio_error(429, 20429, "Too Many Requests"), Scripted.server_error(500)]
)
def test_429_and_500_return_the_message_to_the_queue_and_the_next_attempt_sends_once(
    fake: FakeTwilio, queued: Message, scripted: Scripted
) -> None:
    fake.script(scripted, route=ROUTE_CREATE_MESSAGE)
    with pytest.raises(RetryableSendError):
        delivery.message_deliver(message_id=queued.pk)
    assert Message.objects.get(pk=queued.pk).status == MessageStatus.QUEUED
    assert delivery.message_deliver(message_id=queued.pk).sent
    assert len(fake.messages) == 1


def test_timeout_after_twilio_created_the_message_is_reconciled_not_resent(
    fake: FakeTwilio, queued: Message
) -> None:
    fake.script(Scripted.slow(3.0), route=ROUTE_CREATE_MESSAGE)  # created at once, answered too late
    outcome = delivery.message_deliver(message_id=queued.pk)
    assert outcome.status == MessageStatus.UNKNOWN
    assert delivery.message_reconcile(message_id=queued.pk) == "found"
    queued.refresh_from_db()
    assert queued.provider_sid in fake.messages
    assert len(creates(fake)) == 1
    delivery.message_deliver(message_id=queued.pk)  # a stray duplicate task
    assert len(creates(fake)) == 1


def test_a_send_marked_unknown_minutes_later_is_still_found_where_twilio_sent_it(
    fake: FakeTwilio, queued: Message
) -> None:
    """The stale-send sweep marks a dead worker's send ``unknown`` minutes after it left, and stamps that
    time on the row; the reconciler must still look from when the text was written, not from that stamp."""
    fake.script(Scripted.slow(3.0), route=ROUTE_CREATE_MESSAGE)
    assert delivery.message_deliver(message_id=queued.pk).status == MessageStatus.UNKNOWN
    marked_later = timezone.now() + delivery.SENDING_STALE_AFTER + timedelta(minutes=1)
    Message.objects.filter(pk=queued.pk).update(status_updated_at=marked_later)
    assert delivery.message_reconcile(message_id=queued.pk) == "found"
    queued.refresh_from_db()
    assert queued.provider_sid in fake.messages
    assert len(creates(fake)) == 1
