"""The inbox row shows what the constituent (or staff) last said; the office's automatic texts never do."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from messages.models import Conversation, Message
from messages.services.processing import inbound_process
from messages.services.replies import reply_send, system_reply_send
from messages.twilio import backends
from tests import factories
from tests.messages.twilio.webhook import SMS_PATH, fixture

pytestmark = pytest.mark.django_db

ACK = "Thanks for contacting Rep. Rivera's office. We read every message."
HELP = "Rep. Rivera's office. Reply STOP to opt out."
CONSTITUENTS_TEXT = "Please vote for H.R. 1234. It matters to my family."


@pytest.fixture
def office_with_texts(phone_number: Any) -> Any:
    office = phone_number.office
    office.sms_help_text = HELP
    office.sms_auto_ack_text = ACK
    office.save()
    return office


@pytest.fixture
def run_tasks_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Enqueued tasks run at once in this process, as a worker would run them after commit."""

    def run(task: Any, *args: Any, countdown: float | None = None) -> bool:
        task(*args)
        return True

    monkeypatch.setattr("common.queueing.enqueue", run)


@pytest.fixture
def receive(
    office_with_texts: Any,
    post_signed: Any,
    locmem_outbox: list[Any],
    run_tasks_inline: None,
    django_capture_on_commit_callbacks: Any,
) -> Callable[..., Message]:
    """An inbound text through the webhook, then its follow-up work, with every on-commit task run
    (so an automatic reply is queued and delivered)."""

    def receive(name: str, **overrides: str) -> Message:
        assert post_signed(SMS_PATH, fixture(name, **overrides)).status_code == 200
        message = Message.objects.filter(direction="inbound").latest("pk")
        with django_capture_on_commit_callbacks(execute=True):
            inbound_process(message_id=message.pk)
        return message

    return receive


def _summary(conversation_id: int) -> tuple[Any, ...]:
    return tuple(
        Conversation.objects.filter(pk=conversation_id)
        .values_list("last_message_preview", "last_message_channel", "last_activity_at")
        .get()
    )


def _sent_bodies() -> list[str]:
    return [sent.body for sent in backends.outbox]


def test_auto_acknowledgement_does_not_replace_the_constituents_text_in_the_preview(
    receive: Callable[..., Message],
) -> None:
    inbound = receive("sms_received__basic")

    assert _sent_bodies() == [ACK]  # the acknowledgement really was queued and sent
    conversation = Conversation.objects.get(pk=inbound.conversation_id)
    assert conversation.auto_ack_sent_at is not None
    assert conversation.last_message_preview == CONSTITUENTS_TEXT
    assert conversation.last_message_channel == "sms"
    assert conversation.last_activity_at == inbound.created_at  # an automatic text is not activity
    assert conversation.first_response_at is None  # nor is it a response
    assert conversation.is_unread


def test_help_reply_does_not_replace_the_constituents_text_in_the_preview(
    receive: Callable[..., Message],
) -> None:
    inbound = receive("sms_received__help")

    assert _sent_bodies() == [HELP]
    assert _summary(inbound.conversation_id) == ("Help", "sms", inbound.created_at)


def test_a_system_reply_leaves_the_whole_inbox_summary_as_it_was(
    phone_number: Any, django_capture_on_commit_callbacks: Any, run_tasks_inline: None, locmem_outbox: Any
) -> None:
    """Any automatic text (a consent confirmation, say) after a voicemail: the row still shows it."""
    constituent = factories.ConstituentFactory.create(office=phone_number.office, phone="+14155550123")
    conversation = factories.ConversationFactory.create(constituent=constituent)
    factories.MessageFactory.create(conversation=conversation, to_number=phone_number.e164)
    voicemail = factories.MessageFactory.create(conversation=conversation, channel="voicemail", body="")
    Conversation.objects.filter(pk=conversation.pk).update(
        last_message_preview="[voicemail]",
        last_message_channel="voicemail",
        last_activity_at=voicemail.created_at,
    )
    before = _summary(conversation.pk)

    with django_capture_on_commit_callbacks(execute=True):
        system_reply_send(
            conversation=conversation, body="You are opted in to texts again.", idempotency_key="opt-in:1"
        )

    assert _sent_bodies() == ["You are opted in to texts again."]
    assert _summary(conversation.pk) == before == ("[voicemail]", "voicemail", voicemail.created_at)


def test_a_staff_reply_does_replace_the_preview(
    receive: Callable[..., Message], staff_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    inbound = receive("sms_received__basic")
    conversation = Conversation.objects.get(pk=inbound.conversation_id)

    with django_capture_on_commit_callbacks(execute=True):
        reply = reply_send(
            conversation=conversation, body="We  will pass\nthat on to Rep. Rivera.", sent_by=staff_user
        )

    assert _sent_bodies() == [ACK, reply.body]
    conversation.refresh_from_db()
    assert conversation.last_message_preview == "We will pass that on to Rep. Rivera."
    assert conversation.last_message_channel == "sms"
    assert conversation.last_activity_at == reply.created_at
    assert conversation.first_response_at == reply.created_at


def test_the_constituents_next_text_replaces_the_preview_after_an_acknowledgement(
    receive: Callable[..., Message],
) -> None:
    receive("sms_received__basic")
    sid = "SM" + "7" * 32
    second = receive("sms_received__basic", Body="Also, the pothole on Elm St.", MessageSid=sid, SmsSid=sid)

    assert _sent_bodies() == [ACK]  # one acknowledgement per conversation
    assert _summary(second.conversation_id) == ("Also, the pothole on Elm St.", "sms", second.created_at)
