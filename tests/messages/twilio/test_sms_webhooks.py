"""Inbound SMS and status-callback webhooks, end to end through the signed HTTP path."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils import timezone

from constituents.models import Constituent, SmsConsent
from messages.models import Conversation, ConversationStatus, Media, Message, MessageStatus, StatusCallback
from tests import factories
from tests.messages.twilio.webhook import (
    SMS_PATH,
    STATUS_PATH,
    fixture,
    fixture_names,
    post_signed_in_parallel,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def number(phone_number: Any) -> Any:
    return phone_number


def test_every_sms_fixture_is_accepted_with_twiml(number: Any, post_signed: Any) -> None:
    for name in fixture_names("sms_received"):
        response = post_signed(SMS_PATH, fixture(name))
        assert response.status_code == 200, name
        assert response["Content-Type"].startswith("text/xml")
        assert response.content.decode().startswith("<?xml")


def test_basic_text_creates_constituent_conversation_and_message(number: Any, post_signed: Any) -> None:
    response = post_signed(SMS_PATH, fixture("sms_received__basic"))
    assert response.status_code == 200
    message = Message.objects.get()
    assert message.office == number.office
    assert message.body == "Please vote for H.R. 1234. It matters to my family."
    assert message.status == MessageStatus.RECEIVED
    assert message.processed_at is None
    constituent = message.conversation.constituent
    assert constituent.phone == "+14155550123"
    assert (constituent.carrier_city, constituent.carrier_state, constituent.carrier_zip) == (
        "SAN FRANCISCO",
        "CA",
        "94103",
    )
    conversation = message.conversation
    assert conversation.status == ConversationStatus.OPEN
    assert conversation.last_message_preview.startswith("Please vote")
    assert conversation.is_unread


def test_same_webhook_five_times_stores_one_message(number: Any, post_signed: Any) -> None:
    for _ in range(5):
        assert post_signed(SMS_PATH, fixture("sms_received__basic")).status_code == 200
    assert Message.objects.count() == 1
    assert Conversation.objects.count() == 1
    assert Constituent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_twenty_parallel_copies_store_one_message(phone_number: Any) -> None:
    params = fixture("sms_received__basic")
    codes = post_signed_in_parallel(SMS_PATH, [params] * 20, threads=20)
    assert codes == [200] * 20
    assert Message.objects.filter(provider_sid=params["MessageSid"]).count() == 1
    assert Conversation.objects.count() == 1
    assert Constituent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_parallel_first_texts_with_different_sids_share_one_conversation(phone_number: Any) -> None:
    sids = [f"SM{i:032x}" for i in range(10)]
    requests = [fixture("sms_received__basic", MessageSid=sid, SmsSid=sid, SmsMessageSid=sid) for sid in sids]
    assert post_signed_in_parallel(SMS_PATH, requests, threads=10) == [200] * 10
    assert Message.objects.count() == 10
    assert Conversation.objects.count() == 1


def test_bad_signature_is_403_and_stores_nothing(number: Any, post_signed: Any) -> None:
    response = post_signed(SMS_PATH, fixture("sms_received__basic"), signature="bm90IGEgc2lnbmF0dXJl")
    assert response.status_code == 403
    response = Client().post(SMS_PATH, fixture("sms_received__basic"))
    assert response.status_code == 403
    assert Message.objects.count() == 0


def test_signature_is_checked_even_with_debug(number: Any, post_signed: Any, settings: Any) -> None:
    settings.DEBUG = True
    assert post_signed(SMS_PATH, fixture("sms_received__basic"), token="wrong").status_code == 403


def test_subaccount_token_validates_its_own_webhooks(number: Any, post_signed: Any) -> None:
    from offices.models import TwilioAccount

    sub = "AC" + "5" * 32
    TwilioAccount.objects.create(office=number.office, account_sid=sub, auth_token="sub-token")
    ok = post_signed(SMS_PATH, fixture("sms_received__basic", AccountSid=sub), token="sub-token")
    assert ok.status_code == 200


def test_unknown_to_number_is_acknowledged_but_not_stored(number: Any, post_signed: Any) -> None:
    assert post_signed(SMS_PATH, fixture("sms_received__unknown_number")).status_code == 200
    assert Message.objects.count() == 0
    assert Conversation.objects.count() == 0


def test_unknown_extra_parameters_are_accepted(number: Any, post_signed: Any) -> None:
    response = post_signed(
        SMS_PATH, fixture("sms_received__basic", SomeFutureField="x", AddOns='{"status":"ok"}')
    )
    assert response.status_code == 200
    assert Message.objects.count() == 1


def test_missing_from_is_a_clear_400_and_stores_nothing(number: Any, post_signed: Any) -> None:
    params = fixture("sms_received__basic")
    del params["From"]
    response = post_signed(SMS_PATH, params)
    assert response.status_code == 400
    assert "From" in response.content.decode()
    assert Message.objects.count() == 0


@pytest.mark.parametrize("name", ["sms_received__short_code_sender", "sms_received__alphanumeric_sender"])
def test_non_e164_senders_are_stored_with_their_raw_sender(number: Any, post_signed: Any, name: str) -> None:
    params = fixture(name)
    assert post_signed(SMS_PATH, params).status_code == 200
    message = Message.objects.get()
    assert message.from_number == params["From"]
    assert message.conversation.constituent.phone == ""


def test_anonymous_sender_is_stored(number: Any, post_signed: Any) -> None:
    assert post_signed(SMS_PATH, fixture("sms_received__basic", From="Anonymous")).status_code == 200
    assert Message.objects.get().from_number == "Anonymous"


def test_nul_bytes_are_stripped_and_the_text_kept(number: Any, post_signed: Any) -> None:
    assert post_signed(SMS_PATH, fixture("sms_received__basic", Body="hel\x00lo")).status_code == 200
    assert Message.objects.get().body == "hello"


def test_invalid_utf8_is_stored_not_500(number: Any, client: Client) -> None:
    from django.conf import settings

    from messages.twilio.signatures import sign

    params = fixture("sms_received__basic")
    raw = urlencode(params).replace("Body=Please", "Body=%FF%FEPlease")
    from django.http import QueryDict

    decoded = QueryDict(raw)
    signature = sign(settings.PUBLIC_BASE_URL + SMS_PATH, decoded, settings.TWILIO_AUTH_TOKEN)
    response = client.post(
        SMS_PATH,
        raw,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )
    assert response.status_code == 200
    assert Message.objects.get().body.endswith("Please vote for H.R. 1234. It matters to my family.")


def test_64kb_body_is_a_clear_400_and_stores_nothing(number: Any, post_signed: Any) -> None:
    response = post_signed(SMS_PATH, fixture("sms_received__basic", Body="x" * 65536))
    assert response.status_code == 400
    assert Message.objects.count() == 0


def test_num_media_disagreeing_with_media_keeps_what_was_sent(number: Any, post_signed: Any) -> None:
    assert post_signed(SMS_PATH, fixture("sms_received__num_media_mismatch")).status_code == 200
    message = Message.objects.get()
    assert message.media.count() == 1
    assert message.details["num_media_declared"] == 3


def test_media_at_private_address_is_stored_as_pending_and_never_fetched_in_request(
    number: Any, post_signed: Any
) -> None:
    assert post_signed(SMS_PATH, fixture("sms_received__media_private_address")).status_code == 200
    media = Media.objects.get()
    assert media.status == "pending"


def test_text_reopens_recently_closed_conversation(number: Any, post_signed: Any) -> None:
    constituent = factories.ConstituentFactory.create(office=number.office, phone="+14155550123")
    closed = factories.ConversationFactory.create(
        constituent=constituent,
        status=ConversationStatus.CLOSED,
        closed_at=timezone.now() - timedelta(hours=1),
    )
    post_signed(SMS_PATH, fixture("sms_received__basic"))
    closed.refresh_from_db()
    assert closed.status == ConversationStatus.OPEN
    assert Message.objects.get().conversation == closed


def test_text_after_reopen_window_starts_new_conversation(number: Any, post_signed: Any) -> None:
    constituent = factories.ConstituentFactory.create(office=number.office, phone="+14155550123")
    old = factories.ConversationFactory.create(
        constituent=constituent,
        status=ConversationStatus.CLOSED,
        closed_at=timezone.now() - timedelta(days=30),
    )
    post_signed(SMS_PATH, fixture("sms_received__basic"))
    assert Message.objects.get().conversation != old
    assert Conversation.objects.filter(constituent=constituent).count() == 2


def test_text_wakes_snoozed_conversation(number: Any, post_signed: Any) -> None:
    constituent = factories.ConstituentFactory.create(office=number.office, phone="+14155550123")
    snoozed = factories.ConversationFactory.create(
        constituent=constituent,
        status=ConversationStatus.SNOOZED,
        snoozed_until=timezone.now() + timedelta(days=2),
    )
    post_signed(SMS_PATH, fixture("sms_received__basic"))
    snoozed.refresh_from_db()
    assert snoozed.status == ConversationStatus.OPEN
    assert snoozed.snoozed_until is None


def test_same_phone_in_two_offices_is_two_constituents(number: Any, post_signed: Any) -> None:
    other = factories.PhoneNumberFactory.create(e164="+14155550200")
    post_signed(SMS_PATH, fixture("sms_received__basic"))
    sid = "SM" + "7" * 32
    post_signed(SMS_PATH, fixture("sms_received__basic", To=other.e164, MessageSid=sid, SmsSid=sid))
    assert Constituent.objects.filter(phone="+14155550123").count() == 2
    assert {m.office_id for m in Message.objects.all()} == {number.office_id, other.office_id}


# --- status callbacks ---------------------------------------------------------------------------------------


@pytest.fixture
def outbound(number: Any) -> Message:
    conversation = factories.ConversationFactory.create(
        constituent=factories.ConstituentFactory.create(office=number.office, phone="+14155550123")
    )
    return factories.MessageFactory.create(
        conversation=conversation,
        direction="outbound",
        status=MessageStatus.SENDING,
        provider_sid="SM" + "9" * 32,
        from_number=number.e164,
        to_number="+14155550123",
    )


@pytest.mark.parametrize(
    ("order", "final"),
    [
        (["sent", "delivered", "read"], "read"),
        (["read", "delivered", "sent"], "read"),
        (["delivered", "sent"], "delivered"),
        (["sent", "undelivered_30006", "delivered"], "undelivered"),
    ],
)
def test_status_only_moves_forward_whatever_the_order(
    outbound: Message, post_signed: Any, order: list[str], final: str
) -> None:
    for name in order:
        assert post_signed(STATUS_PATH, fixture(f"sms_status__{name}")).status_code == 204
    outbound.refresh_from_db()
    assert outbound.status == final
    assert StatusCallback.objects.filter(provider_sid=outbound.provider_sid).count() == len(order)


def test_duplicate_callbacks_are_kept_and_applied_once(outbound: Message, post_signed: Any) -> None:
    for _ in range(3):
        post_signed(STATUS_PATH, fixture("sms_status__delivered"))
    outbound.refresh_from_db()
    assert outbound.status == "delivered"
    assert StatusCallback.objects.count() == 3


def test_undelivered_callback_records_a_readable_reason(outbound: Message, post_signed: Any) -> None:
    post_signed(STATUS_PATH, fixture("sms_status__undelivered_30006"))
    outbound.refresh_from_db()
    assert outbound.error_code == 30006
    assert "landline" in outbound.error_message


def test_failed_21610_callback_opts_the_constituent_out(outbound: Message, post_signed: Any) -> None:
    post_signed(STATUS_PATH, fixture("sms_status__failed_21610"))
    constituent = outbound.conversation.constituent
    constituent.refresh_from_db()
    assert constituent.sms_consent == SmsConsent.OPTED_OUT
    event = constituent.consent_events.get()
    assert event.source == "carrier_21610"
    assert event.message_sid == outbound.provider_sid


def test_callback_for_unknown_sid_is_parked_not_dropped(number: Any, post_signed: Any) -> None:
    assert post_signed(STATUS_PATH, fixture("sms_status__delivered")).status_code == 204
    parked = StatusCallback.objects.get()
    assert parked.applied_at is None
    assert parked.payload["MessageStatus"] == ["delivered"]


def test_status_callback_with_bad_signature_is_403(outbound: Message, post_signed: Any) -> None:
    assert post_signed(STATUS_PATH, fixture("sms_status__delivered"), token="nope").status_code == 403
    assert StatusCallback.objects.count() == 0


def test_status_callback_missing_sid_is_400(number: Any, post_signed: Any) -> None:
    params = fixture("sms_status__delivered")
    del params["MessageSid"], params["SmsSid"]
    assert post_signed(STATUS_PATH, params).status_code == 400
