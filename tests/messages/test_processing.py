"""Inbound follow-up: keywords and consent, HELP replies, auto-acknowledgement, idempotency."""

from __future__ import annotations

from typing import Any

import pytest

from constituents.models import SmsConsent
from messages.models import Message
from messages.services.processing import inbound_process, inbound_process_pending
from offices.models import NumberType
from tests import factories
from tests.messages.twilio.webhook import SMS_PATH, fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def office_with_texts(phone_number: Any) -> Any:
    office = phone_number.office
    office.sms_help_text = "Rep. Rivera's office. Reply STOP to opt out."
    office.sms_auto_ack_text = "Thanks for contacting Rep. Rivera's office."
    office.save()
    return office


def _receive(post_signed: Any, name: str, **overrides: str) -> Message:
    assert post_signed(SMS_PATH, fixture(name, **overrides)).status_code == 200
    message = Message.objects.filter(direction="inbound").latest("pk")
    inbound_process(message_id=message.pk)
    return message


def _outbound() -> list[str]:
    return list(Message.objects.filter(direction="outbound").order_by("pk").values_list("body", flat=True))


def test_stop_opts_out_logs_consent_with_its_message_and_sends_nothing(
    office_with_texts: Any, post_signed: Any
) -> None:
    message = _receive(post_signed, "sms_received__stop")
    constituent = message.conversation.constituent
    constituent.refresh_from_db()
    assert constituent.sms_consent == SmsConsent.OPTED_OUT
    event = constituent.consent_events.get()
    assert (event.source, event.message_sid, event.keyword) == ("keyword", message.provider_sid, "stop")
    assert _outbound() == []


@pytest.mark.parametrize("word", ["STOPALL", "unsubscribe", "Cancel", "END", "quit", "REVOKE", "OptOut"])
def test_every_opt_out_keyword_opts_out(office_with_texts: Any, post_signed: Any, word: str) -> None:
    message = _receive(post_signed, "sms_received__stop", Body=word)
    message.conversation.constituent.refresh_from_db()
    assert message.conversation.constituent.sms_consent == SmsConsent.OPTED_OUT


def test_keyword_inside_a_sentence_is_just_a_message(office_with_texts: Any, post_signed: Any) -> None:
    message = _receive(post_signed, "sms_received__stop", Body="Please stop the pipeline")
    message.conversation.constituent.refresh_from_db()
    assert message.conversation.constituent.sms_consent == SmsConsent.IMPLIED
    assert _outbound() == ["Thanks for contacting Rep. Rivera's office."]


def test_start_after_stop_opts_back_in(office_with_texts: Any, post_signed: Any) -> None:
    message = _receive(post_signed, "sms_received__stop")
    _receive(post_signed, "sms_received__start")
    constituent = message.conversation.constituent
    constituent.refresh_from_db()
    assert constituent.sms_consent == SmsConsent.OPTED_IN
    assert [e.new for e in constituent.consent_events.order_by("pk")] == ["opted_out", "opted_in"]


def test_yes_opts_in_on_long_code_but_not_toll_free(
    office_with_texts: Any, phone_number: Any, post_signed: Any
) -> None:
    message = _receive(post_signed, "sms_received__stop")
    _receive(
        post_signed, "sms_received__start", Body="yes", MessageSid="SM" + "8" * 32, SmsSid="SM" + "8" * 32
    )
    constituent = message.conversation.constituent
    constituent.refresh_from_db()
    assert constituent.sms_consent == SmsConsent.OPTED_IN

    toll_free = factories.PhoneNumberFactory.create(
        office=office_with_texts, e164="+18005550100", number_type=NumberType.TOLL_FREE
    )
    sid = "SM" + "6" * 32
    _receive(
        post_signed,
        "sms_received__stop",
        To=toll_free.e164,
        MessageSid="SM" + "5" * 32,
        SmsSid="SM" + "5" * 32,
    )
    _receive(post_signed, "sms_received__start", Body="YES", To=toll_free.e164, MessageSid=sid, SmsSid=sid)
    constituent.refresh_from_db()
    assert constituent.sms_consent == SmsConsent.OPTED_OUT


def test_help_replies_with_office_help_text_once(office_with_texts: Any, post_signed: Any) -> None:
    message = _receive(post_signed, "sms_received__help")
    inbound_process(message_id=message.pk)  # a second run (sweeper re-enqueue) changes nothing
    assert _outbound() == ["Rep. Rivera's office. Reply STOP to opt out."]


def test_advanced_opt_out_is_honoured_without_any_reply(office_with_texts: Any, post_signed: Any) -> None:
    message = _receive(post_signed, "sms_received__advanced_opt_out_stop")
    constituent = message.conversation.constituent
    constituent.refresh_from_db()
    assert constituent.sms_consent == SmsConsent.OPTED_OUT
    assert constituent.consent_events.get().source == "twilio_opt_out"
    assert _outbound() == []


def test_advanced_opt_out_help_sends_no_second_help(office_with_texts: Any, post_signed: Any) -> None:
    _receive(post_signed, "sms_received__help", OptOutType="HELP")
    assert _outbound() == []


def test_auto_ack_is_sent_once_per_conversation(office_with_texts: Any, post_signed: Any) -> None:
    _receive(post_signed, "sms_received__basic")
    for i in range(3):
        sid = f"SM{i + 100:032x}"
        _receive(post_signed, "sms_received__basic", MessageSid=sid, SmsSid=sid)
    assert _outbound() == ["Thanks for contacting Rep. Rivera's office."]


def test_no_auto_ack_for_keywords_or_opted_out_numbers(office_with_texts: Any, post_signed: Any) -> None:
    _receive(post_signed, "sms_received__stop")
    sid = "SM" + "4" * 32
    _receive(post_signed, "sms_received__basic", MessageSid=sid, SmsSid=sid)
    assert _outbound() == []


def test_processing_twice_is_a_no_op(office_with_texts: Any, post_signed: Any) -> None:
    message = _receive(post_signed, "sms_received__basic")
    assert inbound_process(message_id=message.pk) is False
    assert len(_outbound()) == 1


def test_the_drain_honours_an_advanced_opt_out_whose_keyword_is_not_one_of_ours(
    phone_number: Any, post_signed: Any
) -> None:
    """Advanced Opt-Out lets an account add its own keywords: Twilio says OptOutType=STOP for a body that is
    none of ours. The drain's batch read, which marks plain texts done without processing them one by one,
    must still send this one through processing."""
    office = phone_number.office
    office.sms_auto_ack_text = ""  # nothing else about this text needs processing
    office.save()
    params = fixture("sms_received__advanced_opt_out_stop", Body="ARRET")
    assert post_signed(SMS_PATH, params).status_code == 200
    message = Message.objects.get(direction="inbound")
    assert inbound_process_pending() == (message.pk, 1)
    message.conversation.constituent.refresh_from_db()
    assert message.conversation.constituent.sms_consent == SmsConsent.OPTED_OUT
