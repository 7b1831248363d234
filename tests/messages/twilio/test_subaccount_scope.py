"""A webhook signed with an office's own subaccount token may touch only that office.

An office admin adds their office's Twilio subaccount, token included, in the admin; nothing stops them
typing a token of their own choosing. A valid signature with that token must therefore never let a request
reach another office: not by naming its number (an office's numbers are public), and not by naming one of
its message or call SIDs. The deployment's own token, held by whoever runs the deployment, may concern any
office.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from constituents.models import ConsentEvent, Constituent, SmsConsent
from messages.models import Channel, Conversation, Direction, Message, MessageStatus, StatusCallback
from messages.services.delivery import parked_callbacks_apply
from offices.models import TwilioAccount
from tests import factories
from tests.messages.twilio.webhook import SMS_PATH, STATUS_PATH, fixture
from tests.plans import assert_table_found_by
from tests.voice.helpers import load as voice_fixture
from voice.models import ParkedVoiceCallback
from voice.services.parking import parked_sweep

pytestmark = pytest.mark.django_db

ALPHA_NUMBER = "+14155550100"  # the `phone_number` fixture's
BETA_NUMBER = "+14155550199"
ALPHA_SUB = "AC" + "a1" * 16
ALPHA_TOKEN = "alpha-chose-this-token"
VOICE_PATH = "/webhooks/twilio/voice/"
VOICE_STATUS_PATH = "/webhooks/twilio/voice/status/"
STAFF_ANSWERED_PATH = "/webhooks/twilio/voice/dial/answered/"


@pytest.fixture
def alpha_sub(phone_number: Any) -> TwilioAccount:
    return TwilioAccount.objects.create(
        office=phone_number.office, account_sid=ALPHA_SUB, auth_token=ALPHA_TOKEN
    )


@pytest.fixture
def beta(db: None) -> Any:
    office = factories.OfficeFactory.create(slug="beta", name="Beta Office")
    factories.PhoneNumberFactory.create(office=office, e164=BETA_NUMBER)
    return office


def _params(name: str, **overrides: str) -> dict[str, str]:
    """A fixture's form: the texts' live with the SMS tests, the calls' with the voice tests."""
    if name.startswith("voice_"):
        params: dict[str, str] = voice_fixture(name)["params"]
        return {**params, **overrides}
    return fixture(name, **overrides)


def _as_alpha(name: str, **overrides: str) -> dict[str, str]:
    return _params(name, AccountSid=ALPHA_SUB, **overrides)


def test_a_text_signed_by_an_offices_subaccount_reaches_that_office(alpha_sub, beta, post_signed) -> None:
    response = post_signed(SMS_PATH, _as_alpha("sms_received__basic"), token=ALPHA_TOKEN)
    assert response.status_code == 200
    assert Message.objects.get().office_id == alpha_sub.office_id


def test_a_text_to_another_offices_number_signed_by_a_subaccount_is_403_and_stores_nothing(
    alpha_sub, beta, post_signed
) -> None:
    response = post_signed(SMS_PATH, _as_alpha("sms_received__basic", To=BETA_NUMBER), token=ALPHA_TOKEN)
    assert response.status_code == 403
    assert Message.objects.count() == 0
    assert Constituent.objects.count() == 0
    assert Conversation.objects.count() == 0


def test_a_subaccount_cannot_opt_out_another_offices_constituent(alpha_sub, beta, post_signed) -> None:
    constituent = factories.ConstituentFactory.create(office=beta, phone="+14155550123")
    response = post_signed(SMS_PATH, _as_alpha("sms_received__stop", To=BETA_NUMBER), token=ALPHA_TOKEN)
    assert response.status_code == 403
    constituent.refresh_from_db()
    assert constituent.sms_consent == SmsConsent.IMPLIED
    assert not ConsentEvent.objects.exists()
    assert Message.objects.count() == 0


def test_the_deployment_token_may_reach_every_office(alpha_sub, beta, post_signed) -> None:
    response = post_signed(SMS_PATH, fixture("sms_received__basic", To=BETA_NUMBER, AccountSid=ALPHA_SUB))
    assert response.status_code == 200
    assert Message.objects.get().office_id == beta.pk


def _outbound(office: Any, sid: str | None) -> Message:
    conversation = factories.ConversationFactory.create(
        constituent=factories.ConstituentFactory.create(office=office, phone="+14155550123")
    )
    return factories.MessageFactory.create(
        conversation=conversation,
        direction=Direction.OUTBOUND,
        provider_sid=sid,
        status=MessageStatus.SENT,
        from_number=BETA_NUMBER,
        to_number="+14155550123",
    )


def test_a_status_callback_for_another_offices_message_signed_by_a_subaccount_is_403(
    alpha_sub, beta, post_signed
) -> None:
    sid = "SM" + "b" * 32
    message = _outbound(beta, sid)
    params = _as_alpha("sms_status__failed_21610", MessageSid=sid, SmsSid=sid, From=BETA_NUMBER)
    assert post_signed(STATUS_PATH, params, token=ALPHA_TOKEN).status_code == 403
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert message.conversation.constituent.sms_consent == SmsConsent.IMPLIED
    assert not StatusCallback.objects.exists()


def test_a_status_callback_for_the_offices_own_message_signed_by_its_subaccount_applies(
    alpha_sub, post_signed
) -> None:
    sid = "SM" + "c" * 32
    message = _outbound(alpha_sub.office, sid)
    params = _as_alpha("sms_status__delivered", MessageSid=sid, SmsSid=sid)
    assert post_signed(STATUS_PATH, params, token=ALPHA_TOKEN).status_code == 204
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    assert StatusCallback.objects.get().office_id == alpha_sub.office_id


def test_a_parked_subaccount_callback_never_applies_to_another_offices_message(
    alpha_sub, beta, post_signed
) -> None:
    sid = "SM" + "d" * 32
    params = _as_alpha("sms_status__failed_21610", MessageSid=sid, SmsSid=sid)
    assert post_signed(STATUS_PATH, params, token=ALPHA_TOKEN).status_code == 204  # unknown SID: parked
    parked = StatusCallback.objects.get()
    assert (parked.office_id, parked.applied_at) == (alpha_sub.office_id, None)

    message = _outbound(beta, sid)  # Beta's send records that SID later
    assert parked_callbacks_apply() == 0
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert message.conversation.constituent.sms_consent == SmsConsent.IMPLIED
    parked.refresh_from_db()
    assert parked.applied_at is None  # kept as evidence, never applied


def test_a_parked_subaccount_callback_applies_to_its_own_offices_message(alpha_sub, post_signed) -> None:
    sid = "SM" + "e" * 32
    params = _as_alpha("sms_status__delivered", MessageSid=sid, SmsSid=sid)
    assert post_signed(STATUS_PATH, params, token=ALPHA_TOKEN).status_code == 204
    message = _outbound(alpha_sub.office, sid)
    assert parked_callbacks_apply() == 1
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED


def test_a_call_to_another_offices_number_signed_by_a_subaccount_is_403(alpha_sub, beta, post_signed) -> None:
    params = _as_alpha("voice_call_received__basic", To=BETA_NUMBER, Called=BETA_NUMBER)
    assert post_signed(VOICE_PATH, params, token=ALPHA_TOKEN).status_code == 403
    assert Message.objects.count() == 0


def test_a_call_callback_naming_another_offices_call_is_403(alpha_sub, beta, post_signed) -> None:
    call_sid = "CA" + "f" * 32
    beta_call = factories.MessageFactory.create(
        conversation=factories.ConversationFactory.create(
            constituent=factories.ConstituentFactory.create(office=beta, phone="+14155550123")
        ),
        channel="call",
        provider_sid=call_sid,
        status=MessageStatus.RECEIVED,
        details={"call_status": "in-progress"},
    )
    # Alpha's own number in To, Beta's call in CallSid.
    params = _as_alpha("voice_call_status__completed", CallSid=call_sid)
    assert post_signed(VOICE_STATUS_PATH, params, token=ALPHA_TOKEN).status_code == 403
    staff = _as_alpha("voice_staff_answered__basic", ParentCallSid=call_sid)
    path = f"{STAFF_ANSWERED_PATH}?call={beta_call.provider_sid}"
    assert post_signed(path, staff, token=ALPHA_TOKEN).status_code == 403
    beta_call.refresh_from_db()
    assert beta_call.details == {"call_status": "in-progress"}
    assert Message.objects.count() == 1


def test_a_staff_leg_naming_another_offices_call_only_in_its_query_string_is_403_and_logged_so(
    alpha_sub, beta, post_signed, caplog
) -> None:
    beta_call = factories.MessageFactory.create(
        conversation=factories.ConversationFactory.create(
            constituent=factories.ConstituentFactory.create(office=beta, phone="+14155550123")
        ),
        channel="call",
        provider_sid="CA" + "f" * 32,
        status=MessageStatus.RECEIVED,
        details={"call_status": "in-progress"},
    )
    # Nothing in the form names Beta: its call is named only by the callback URL's `call` parameter.
    staff = _as_alpha("voice_staff_answered__basic", ParentCallSid="CA" + "e" * 32, CallSid="CA" + "d" * 32)
    with caplog.at_level(logging.WARNING, logger="messages.twilio.signatures"):
        response = post_signed(
            f"{STAFF_ANSWERED_PATH}?call={beta_call.provider_sid}", staff, token=ALPHA_TOKEN
        )
    assert response.status_code == 403
    beta_call.refresh_from_db()
    assert beta_call.details == {"call_status": "in-progress"}
    [record] = [r for r in caplog.records if r.name == "messages.twilio.signatures"]
    reason = (
        f"signed with office {alpha_sub.office_id}'s subaccount, "
        "but it names another office's message or call"
    )
    assert f": {reason} (" in record.getMessage()


def test_the_sweep_is_not_held_up_by_a_callback_parked_for_another_office(
    alpha_sub, beta, post_signed
) -> None:
    foreign, own = "SM" + "1" * 32, "SM" + "2" * 32
    params = _as_alpha("sms_status__failed_21610", MessageSid=foreign, SmsSid=foreign)
    assert post_signed(STATUS_PATH, params, token=ALPHA_TOKEN).status_code == 204
    assert (
        post_signed(STATUS_PATH, fixture("sms_status__delivered", MessageSid=own, SmsSid=own)).status_code
        == 204
    )
    _outbound(beta, foreign)
    message = factories.MessageFactory.create(
        conversation=factories.ConversationFactory.create(
            constituent=factories.ConstituentFactory.create(office=beta, phone="+14155550124")
        ),
        direction=Direction.OUTBOUND,
        provider_sid=own,
        status=MessageStatus.SENT,
    )
    assert parked_callbacks_apply(limit=1) == 1  # the one batch place goes to the callback that can apply
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED


RECORDING_PATH = "/webhooks/twilio/voice/recording/"
CALL_SID = "CA" + "9" * 32


def _park_recording_as_alpha(post_signed: Any) -> ParkedVoiceCallback:
    params = _as_alpha("voice_recording_completed__completed", CallSid=CALL_SID)
    assert post_signed(RECORDING_PATH, params, token=ALPHA_TOKEN).status_code == 204
    parked = ParkedVoiceCallback.objects.get()
    assert parked.signed_for_office_id is not None
    return parked


def test_a_voice_callback_parked_by_a_subaccount_never_applies_to_another_offices_call(
    alpha_sub, beta, post_signed
) -> None:
    parked = _park_recording_as_alpha(post_signed)
    # Beta's call with that SID arrives (signed with the deployment's token).
    params = _params("voice_call_received__basic", CallSid=CALL_SID, To=BETA_NUMBER, Called=BETA_NUMBER)
    assert post_signed(VOICE_PATH, params).status_code == 200
    assert Message.objects.get(provider_sid=CALL_SID).office_id == beta.pk
    assert parked_sweep() == 0
    parked.refresh_from_db()
    assert parked.applied_at is None
    assert not Message.objects.filter(channel=Channel.VOICEMAIL).exists()


def test_a_voice_callback_parked_by_a_subaccount_applies_to_its_own_offices_call(
    alpha_sub, beta, post_signed
) -> None:
    parked = _park_recording_as_alpha(post_signed)
    params = _as_alpha("voice_call_received__basic", CallSid=CALL_SID)
    assert post_signed(VOICE_PATH, params, token=ALPHA_TOKEN).status_code == 200
    parked.refresh_from_db()
    assert parked.applied_at is not None
    voicemail = Message.objects.get(channel=Channel.VOICEMAIL)
    assert voicemail.office_id == alpha_sub.office_id


def test_the_voice_sweep_is_not_held_up_by_a_callback_parked_for_another_office(
    alpha_sub, beta, post_signed
) -> None:
    _park_recording_as_alpha(post_signed)  # for CALL_SID, which turns out to be Beta's
    other_sid = "CA" + "8" * 32
    recording = _params(
        "voice_recording_completed__completed", CallSid=other_sid, RecordingSid="RE" + "8" * 32
    )
    assert post_signed(RECORDING_PATH, recording).status_code == 204  # the deployment's token
    for sid in (CALL_SID, other_sid):  # both calls stored behind the webhooks' backs: only the sweep applies
        factories.MessageFactory.create(
            conversation=factories.ConversationFactory.create(
                constituent=factories.ConstituentFactory.create(office=beta)
            ),
            channel=Channel.CALL,
            provider_sid=sid,
            details={},
        )
    assert parked_sweep(batch=1) == 1
    assert ParkedVoiceCallback.objects.get(call_sid=other_sid).applied_at is not None
    assert ParkedVoiceCallback.objects.get(call_sid=CALL_SID).applied_at is None


def test_the_voice_sweep_looks_calls_up_by_the_parked_sids(alpha_sub, post_signed) -> None:
    """As for texts (tests/messages/test_delivery.py): the sweep must find each parked callback's call by
    its SID, never scan the messages, whichever token signed the callback."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _park_recording_as_alpha(post_signed)
    with CaptureQueriesContext(connection) as queries:
        parked_sweep()
    sweep = queries.captured_queries[0]["sql"]
    assert_table_found_by(sweep, table=Message._meta.db_table, column="provider_sid")
