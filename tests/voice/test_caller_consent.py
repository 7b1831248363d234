"""Consent to texts comes only from a text: a caller has given none, and their first text implies it."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from constituents.models import ConsentEvent, ConsentSource, Constituent, SmsConsent
from messages.models import Channel, Conversation, ConversationStatus, Message
from messages.services.replies import reply_send
from tests.messages.twilio.webhook import SMS_PATH, fixture
from tests.voice.conftest import Hotline
from tests.voice.helpers import CALLER

pytestmark = pytest.mark.django_db


def _caller() -> Constituent:
    return Constituent.objects.get(phone=CALLER)


def test_a_caller_has_given_no_consent_to_texts(post_voice: Any, hotline: Hotline, staff_in: Client) -> None:
    post_voice("voice_call_received__basic")
    post_voice("voice_call_status__completed")
    caller = _caller()
    assert caller.sms_consent == SmsConsent.NONE
    assert not ConsentEvent.objects.exists()
    call = Message.objects.get(channel=Channel.CALL)
    page = staff_in.get(f"/o/{hotline.office.slug}/conversations/{call.conversation_id}/").content.decode()
    assert "<dt>Texting</dt><dd>Not given</dd>" in page
    assert "Implied (texted in)" not in page


def test_a_withheld_caller_has_given_no_consent_either(post_voice: Any, hotline: Hotline) -> None:
    post_voice("voice_call_received__anonymous")
    assert Message.objects.get(channel=Channel.CALL).conversation.constituent.sms_consent == SmsConsent.NONE


def test_staff_may_still_answer_a_caller_by_text(post_voice: Any, hotline: Hotline, staff_in: Client) -> None:
    """A reply is refused only to someone who opted out; a caller can be answered (and may reply STOP)."""
    post_voice("voice_call_received__basic")
    call = Message.objects.get(channel=Channel.CALL)
    reply = reply_send(conversation=call.conversation, body="We got your call.", sent_by=None)
    assert reply.pk is not None
    assert _caller().sms_consent == SmsConsent.NONE  # our own text gives no consent


@pytest.mark.parametrize("open_thread", [True, False], ids=["thread-open", "thread-closed"])
def test_a_callers_first_text_implies_consent_and_is_logged(
    post_voice: Any, post_signed: Any, hotline: Hotline, open_thread: bool
) -> None:
    post_voice("voice_call_received__basic")
    if not open_thread:
        Conversation.objects.update(status=ConversationStatus.CLOSED)  # long ago: a new thread
    params = fixture("sms_received__basic", From=CALLER)
    assert post_signed(SMS_PATH, params).status_code == 200
    text = Message.objects.get(channel=Channel.SMS)
    assert _caller().sms_consent == SmsConsent.IMPLIED
    event = ConsentEvent.objects.get()
    assert (event.previous, event.new, event.source) == (
        SmsConsent.NONE,
        SmsConsent.IMPLIED,
        ConsentSource.TEXTED_IN,
    )
    assert (event.constituent_id, event.message_sid) == (_caller().pk, text.provider_sid)
    thread = text.conversation
    assert (thread.last_message_channel, thread.is_unread) == (Channel.SMS, True)
    # The same webhook again stores nothing and logs nothing.
    assert post_signed(SMS_PATH, params).status_code == 200
    assert (Message.objects.filter(channel=Channel.SMS).count(), ConsentEvent.objects.count()) == (1, 1)
