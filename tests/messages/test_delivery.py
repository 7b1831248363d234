"""Outbound texts: queue → claim → send exactly once → status; failures, opt-outs and reconciliation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from constituents.models import SmsConsent
from messages.models import Message, MessageStatus, StatusCallback
from messages.services import delivery
from messages.services.replies import ReplyRejected, reply_send
from messages.twilio.backends import LocmemBackend
from messages.twilio.errors import PermanentSendError, RetryableSendError, SendError, UnknownOutcomeError
from messages.twilio.payloads import parse_delivery_status
from tests import factories
from tests.messages.twilio.webhook import fixture
from tests.plans import assert_table_found_by

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(phone_number: Any) -> Any:
    constituent = factories.ConstituentFactory.create(office=phone_number.office, phone="+14155550123")
    conversation = factories.ConversationFactory.create(constituent=constituent)
    factories.MessageFactory.create(conversation=conversation, to_number=phone_number.e164)
    return conversation


def _reply(
    conversation: Any, staff_user: Any, body: str = "Thanks, we'll look into it.", **kw: Any
) -> Message:
    return reply_send(conversation=conversation, body=body, sent_by=staff_user, **kw)


def test_reply_is_queued_then_sent_once_with_status_callback(
    conversation: Any, staff_user: Any, locmem_outbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        message = _reply(conversation, staff_user)
    assert message.status == MessageStatus.QUEUED
    assert len(callbacks) == 1  # delivery is enqueued only after commit
    outcome = delivery.message_deliver(message_id=message.pk)
    assert outcome.sent
    message.refresh_from_db()
    assert message.status == MessageStatus.SENDING
    assert (message.provider_sid or "").startswith("SM")
    assert len(locmem_outbox) == 1
    sent = locmem_outbox[0]
    assert (sent.to, sent.from_number, sent.body) == ("+14155550123", "+14155550100", message.body)
    assert sent.status_callback == "https://civicdesk.test/webhooks/twilio/sms/status/"
    conversation.refresh_from_db()
    assert conversation.first_response_at is not None


def test_duplicated_or_retried_delivery_task_never_sends_twice(
    conversation: Any, staff_user: Any, locmem_outbox: list[Any]
) -> None:
    message = _reply(conversation, staff_user)
    for _ in range(3):
        delivery.message_deliver(message_id=message.pk)
    assert len(locmem_outbox) == 1
    assert Message.objects.get(pk=message.pk).send_attempts == 1


def test_double_submitted_reply_form_creates_one_message(conversation: Any, staff_user: Any) -> None:
    first = _reply(conversation, staff_user, idempotency_key="form-token-1")
    second = _reply(conversation, staff_user, idempotency_key="form-token-1")
    assert first.pk == second.pk
    assert Message.objects.filter(direction="outbound").count() == 1


def test_reply_to_opted_out_constituent_is_rejected_clearly(conversation: Any, staff_user: Any) -> None:
    constituent = conversation.constituent
    constituent.sms_consent = SmsConsent.OPTED_OUT
    constituent.save()
    with pytest.raises(ReplyRejected, match="opted out"):
        _reply(conversation, staff_user)
    assert not Message.objects.filter(direction="outbound").exists()


def test_opt_out_between_queue_and_send_blocks_the_send(
    conversation: Any, staff_user: Any, locmem_outbox: list[Any]
) -> None:
    message = _reply(conversation, staff_user)
    constituent = conversation.constituent
    constituent.sms_consent = SmsConsent.OPTED_OUT
    constituent.save()
    delivery.message_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert "opted out" in message.error_message
    assert locmem_outbox == []


def test_body_over_1600_characters_is_rejected_with_the_limit(conversation: Any, staff_user: Any) -> None:
    with pytest.raises(ReplyRejected, match="1600"):
        _reply(conversation, staff_user, body="x" * 1601)


def test_segments_are_counted_for_unicode(conversation: Any, staff_user: Any) -> None:
    message = _reply(conversation, staff_user, body="Gracias 🙏 " * 10)
    assert message.num_segments == 2  # UCS-2: 100 code units > 70


def test_transient_error_returns_message_to_queue_for_retry(
    conversation: Any, staff_user: Any, locmem_outbox: list[Any]
) -> None:
    message = _reply(conversation, staff_user)
    LocmemBackend.fail_next(RetryableSendError("Twilio rate limit", code=20429, http_status=429))
    with pytest.raises(RetryableSendError):
        delivery.message_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert message.status == MessageStatus.QUEUED
    delivery.message_deliver(message_id=message.pk)
    assert len(locmem_outbox) == 1


def test_give_up_fails_the_message_with_the_cause_and_no_promise_of_a_retry(
    conversation: Any, staff_user: Any
) -> None:
    message = _reply(conversation, staff_user)
    delivery.delivery_give_up(
        message_id=message.pk,
        reason="Twilio is temporarily unavailable (HTTP 503); it will be retried.",
        attempts=7,
    )
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert message.error_message == (
        "Twilio was unavailable after 7 tries: Twilio is temporarily unavailable (HTTP 503). "
        "Not sent; try again later."
    )


def test_delivering_a_message_claims_that_message_and_no_other_queued_one(
    conversation: Any, staff_user: Any, locmem_outbox: list[Any]
) -> None:
    first = _reply(conversation, staff_user, body="First reply.")
    second = _reply(conversation, staff_user, body="Second reply.")
    assert delivery.message_deliver(message_id=second.pk).sent
    assert [m.body for m in locmem_outbox] == ["Second reply."]
    assert Message.objects.get(pk=first.pk).status == MessageStatus.QUEUED


def test_giving_up_fails_only_that_message_and_only_while_it_is_still_queued(
    conversation: Any, staff_user: Any, locmem_outbox: list[Any]
) -> None:
    sent = _reply(conversation, staff_user, body="Sent before the give-up.")
    delivery.message_deliver(message_id=sent.pk)
    other = _reply(conversation, staff_user, body="Still queued.")
    given_up = _reply(conversation, staff_user, body="Given up.")
    delivery.delivery_give_up(message_id=given_up.pk, reason="HTTP 503")
    delivery.delivery_give_up(message_id=sent.pk, reason="HTTP 503")  # a late give-up for a sent one
    statuses = dict(Message.objects.filter(direction="outbound").values_list("pk", "status"))
    assert statuses == {
        sent.pk: MessageStatus.SENDING,
        other.pk: MessageStatus.QUEUED,
        given_up.pk: MessageStatus.FAILED,
    }


def test_permanent_21610_fails_and_opts_out(conversation: Any, staff_user: Any) -> None:
    message = _reply(conversation, staff_user)
    LocmemBackend.fail_next(PermanentSendError("The recipient has opted out.", code=21610, http_status=400))
    outcome = delivery.message_deliver(message_id=message.pk)
    assert not outcome.sent
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert message.error_code == 21610
    constituent = conversation.constituent
    constituent.refresh_from_db()
    assert constituent.sms_consent == SmsConsent.OPTED_OUT
    assert constituent.consent_events.get().source == "carrier_21610"


def test_unknown_outcome_is_reconciled_not_resent(
    conversation: Any, staff_user: Any, locmem_outbox: list[Any]
) -> None:
    message = _reply(conversation, staff_user)
    LocmemBackend.fail_next(UnknownOutcomeError("read timeout after sending"), created=True)
    delivery.message_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert message.status == MessageStatus.UNKNOWN
    assert delivery.message_reconcile(message_id=message.pk) == "found"
    message.refresh_from_db()
    assert message.provider_sid
    assert message.status == MessageStatus.SENDING
    assert len(locmem_outbox) == 1  # Twilio got it once; we never sent it again
    # A later delivery task for the same row does nothing.
    delivery.message_deliver(message_id=message.pk)
    assert len(locmem_outbox) == 1


def test_unknown_outcome_not_found_gives_up_after_window_without_resending(
    conversation: Any, staff_user: Any, locmem_outbox: list[Any]
) -> None:
    message = _reply(conversation, staff_user)
    LocmemBackend.fail_next(UnknownOutcomeError("connection reset after sending"), created=False)
    delivery.message_deliver(message_id=message.pk)
    assert delivery.message_reconcile(message_id=message.pk) == "not-found-yet"
    Message.objects.filter(pk=message.pk).update(status_updated_at=timezone.now() - timedelta(hours=1))
    assert delivery.message_reconcile(message_id=message.pk) == "gave-up"
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert "not resent" in message.error_message
    assert locmem_outbox == []


def test_worker_crash_mid_send_becomes_unknown_then_reconciled_without_resending(
    conversation: Any, staff_user: Any, locmem_outbox: list[Any]
) -> None:
    message = _reply(conversation, staff_user)
    # Twilio created the message, then the worker died before storing the SID: the row is left "sending".
    LocmemBackend.fail_next(SendError("the worker was killed"), created=True)
    with pytest.raises(SendError):
        delivery.message_deliver(message_id=message.pk)
    assert Message.objects.get(pk=message.pk).status == MessageStatus.SENDING
    assert delivery.stale_sends_mark_unknown() == 0  # not stale yet
    Message.objects.filter(pk=message.pk).update(status_updated_at=timezone.now() - timedelta(minutes=10))
    assert delivery.stale_sends_mark_unknown() == 1
    assert Message.objects.get(pk=message.pk).status == MessageStatus.UNKNOWN

    assert delivery.message_reconcile(message_id=message.pk) == "found"
    message.refresh_from_db()
    assert message.status == MessageStatus.SENDING  # the SID Twilio gave it is stored; callbacks move it on
    assert (message.provider_sid or "").startswith("SM")
    delivery.message_deliver(message_id=message.pk)  # a stray retry of the delivery task
    assert len(locmem_outbox) == 1  # Twilio got it once; it was never sent again


def test_callback_arriving_before_sid_is_stored_is_applied_when_it_is(
    conversation: Any, staff_user: Any, locmem_outbox: list[Any]
) -> None:
    message = _reply(conversation, staff_user)
    # The simulator (and real Twilio) can call back before the worker has stored the SID.
    sid = "SM" + "9" * 32
    for status in ("sent", "delivered"):
        params = fixture(f"sms_status__{status}")
        delivery.delivery_status_apply(callback=parse_delivery_status(params))
    assert StatusCallback.objects.filter(applied_at__isnull=True).count() == 2

    from messages.services.delivery import _record_sid

    Message.objects.filter(pk=message.pk).update(status=MessageStatus.SENDING)
    _record_sid(message_id=message.pk, sid=sid, status="queued", segments=1)
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    assert StatusCallback.objects.filter(applied_at__isnull=True).count() == 0


def test_sweeper_applies_parked_callbacks_once_sid_is_known(conversation: Any) -> None:
    delivery.delivery_status_apply(callback=parse_delivery_status(fixture("sms_status__delivered")))
    factories.MessageFactory.create(
        conversation=conversation,
        direction="outbound",
        status=MessageStatus.SENDING,
        provider_sid="SM" + "9" * 32,
    )
    assert delivery.parked_callbacks_apply() == 1
    assert Message.objects.get(provider_sid="SM" + "9" * 32).status == MessageStatus.DELIVERED


def test_the_parked_callback_sweep_looks_messages_up_by_the_parked_sids(conversation: Any) -> None:
    """The sweep runs every minute over a message table of millions: its plan must start from the few parked
    callbacks and find their messages by SID, never scan the messages. (An EXISTS whose OR refers to both
    tables was planned as a scan of every message.) Scans are disabled so that the tiny test tables cannot
    make a scan the cheaper plan: what is left shows whether an index lookup by SID is possible at all."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    factories.MessageFactory.create(conversation=conversation, direction="outbound", status="sent")
    delivery.delivery_status_apply(callback=parse_delivery_status(fixture("sms_status__delivered")))
    with CaptureQueriesContext(connection) as queries:
        delivery.parked_callbacks_apply()
    sweep = next(q["sql"] for q in queries.captured_queries if "FOR UPDATE" in q["sql"])
    assert_table_found_by(sweep, table=Message._meta.db_table, column="provider_sid")
