"""Composing outbound texts: staff replies and system replies (help text, auto-acknowledgement).

A reply is stored as ``queued`` and delivered by a worker after commit (messages.services.delivery).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from common.queueing import enqueue_on_commit
from constituents.models import Constituent
from messages.models import Channel, Conversation, Direction, Message, MessageStatus
from messages.segments import MAX_BODY_LENGTH, segment_info
from messages.services.threading import conversation_touch
from offices.models import OfficePhoneNumber


class ReplyRejected(Exception):
    """The reply cannot be sent; ``reason`` is written for staff."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


OPTED_OUT_REASON = (
    "This constituent has opted out of texts (they replied STOP). civicdesk will not text them until they "
    "text START."
)


def sender_number_for(*, conversation: Conversation) -> OfficePhoneNumber:
    """Answer from the number the constituent last texted, so the thread stays on one number."""
    last_inbound_to = (
        Message.objects.filter(
            conversation=conversation, direction=Direction.INBOUND, channel__in=("sms", "mms")
        )
        .order_by("-created_at")
        .values_list("to_number", flat=True)
        .first()
    )
    numbers = OfficePhoneNumber.objects.filter(office_id=conversation.office_id, sms_enabled=True)
    number = numbers.filter(e164=last_inbound_to).first() if last_inbound_to else None
    number = number or numbers.order_by("pk").first()
    if number is None:
        raise ReplyRejected("This office has no number that can send texts. An admin can add one.")
    return number


def _validate(*, constituent: Constituent, body: str) -> None:
    if constituent.is_opted_out:
        raise ReplyRejected(OPTED_OUT_REASON)
    if not constituent.phone:
        raise ReplyRejected("This constituent has no phone number to text.")
    if not body.strip():
        raise ReplyRejected("Write a message before sending.")
    if len(body) > MAX_BODY_LENGTH:
        raise ReplyRejected(f"Texts are limited to {MAX_BODY_LENGTH} characters; this one has {len(body)}.")


@transaction.atomic
def reply_send(
    *, conversation: Conversation, body: str, sent_by: AbstractBaseUser | None, idempotency_key: str = ""
) -> Message:
    """Queue a text to the conversation's constituent; a worker sends it after commit.

    Idempotent on ``idempotency_key`` (per office): a double-submitted form returns the first message.
    Raises ReplyRejected for opted-out constituents, empty or over-long bodies, or no sending number.
    """
    if idempotency_key:
        existing = Message.objects.filter(
            office_id=conversation.office_id, idempotency_key=idempotency_key
        ).first()
        if existing is not None:
            return existing
    constituent = Constituent.objects.get(pk=conversation.constituent_id, office_id=conversation.office_id)
    _validate(constituent=constituent, body=body)
    number = sender_number_for(conversation=conversation)
    message = Message(
        office_id=conversation.office_id,
        conversation=conversation,
        direction=Direction.OUTBOUND,
        channel=Channel.SMS,
        body=body,
        status=MessageStatus.QUEUED,
        from_number=number.e164,
        to_number=constituent.phone,
        sent_by_id=sent_by.pk if sent_by is not None else None,
        idempotency_key=idempotency_key[:64],
        num_segments=segment_info(body).segments,
        created_at=timezone.now(),
        status_updated_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            message.save(force_insert=True)
    except IntegrityError:
        winner = Message.objects.filter(
            office_id=conversation.office_id, idempotency_key=idempotency_key
        ).first()
        if not idempotency_key or winner is None:
            raise
        return winner
    conversation_touch(conversation=conversation, message=message)

    from messages import tasks  # tasks import services; keep the import graph one-way at load time

    enqueue_on_commit(tasks.message_deliver, message.pk)
    return message


def system_reply_send(*, conversation: Conversation, body: str, idempotency_key: str) -> Message:
    """A reply the office sends automatically; same rules as a staff reply, no staff sender.

    It does not change the conversation's inbox summary (preview, channel, activity time): the row keeps
    showing what the constituent or staff last said (see ``conversation_touch``).
    """
    return reply_send(conversation=conversation, body=body, sent_by=None, idempotency_key=idempotency_key)


def status_callback_url() -> str | None:
    """Where Twilio posts delivery status for our sends; None when no public URL is configured."""
    base = settings.PUBLIC_BASE_URL
    return f"{base}{reverse('twilio:sms-status')}" if base else None
