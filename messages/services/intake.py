"""Inbound texts: verify → persist → acknowledge. No network I/O happens here; follow-up work is queued."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from civicdesk.queueing import enqueue_on_commit
from constituents.services import LocationHints, constituent_create_anonymous, constituent_for_phone
from messages.models import Channel, Direction, Media, Message, MessageStatus
from messages.services.threading import conversation_for_inbound, conversation_touch
from messages.twilio.payloads import InboundSms
from offices.selectors import office_phone_number_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IntakeResult:
    message: Message | None
    created: bool
    # Why nothing was stored, for logs: "unknown_number". Empty when a message is returned.
    reason: str = ""


@transaction.atomic
def message_receive(*, sms: InboundSms) -> IntakeResult:
    """Store an inbound text once, thread it, and enqueue its processing on commit. Idempotent on its SID."""
    existing = Message.objects.filter(provider_sid=sms.message_sid).first()
    if existing is not None:
        return IntakeResult(existing, created=False)

    number = office_phone_number_for(e164=sms.to_e164) if sms.to_e164 else None
    if number is None:
        logger.warning(
            "inbound SMS %s to unknown number %r: acknowledged, not stored", sms.message_sid, sms.to_raw
        )
        return IntakeResult(None, created=False, reason="unknown_number")

    office = number.office
    now = timezone.now()
    hints = LocationHints(city=sms.from_city, state=sms.from_state, zip_code=sms.from_zip)
    if sms.from_e164:
        constituent = constituent_for_phone(office=office, phone=sms.from_e164, hints=hints)
    else:
        # Short codes, alphanumeric senders and "Anonymous" have no E.164 form; keep the raw sender on the
        # message and give the thread a constituent staff can fill in.
        constituent = constituent_create_anonymous(office=office)
    conversation = conversation_for_inbound(constituent=constituent, at=now)

    message = Message(
        office=office,
        conversation=conversation,
        direction=Direction.INBOUND,
        channel=Channel.MMS if sms.media else Channel.SMS,
        body=sms.body,
        provider_sid=sms.message_sid,
        status=MessageStatus.RECEIVED,
        from_number=sms.from_raw[:32],
        to_number=sms.to_raw[:32],
        created_at=now,
        details={
            "opt_out_type": sms.opt_out_type or "",
            "num_media_declared": sms.num_media,
            "messaging_service_sid": sms.messaging_service_sid,
            "account_sid": sms.account_sid,
        },
    )
    try:
        with transaction.atomic():
            message.save(force_insert=True)
    except IntegrityError:
        # A parallel copy of the same webhook committed first: return its row. Anything else re-raises.
        winner = Message.objects.filter(provider_sid=sms.message_sid).first()
        if winner is None:
            raise
        return IntakeResult(winner, created=False)

    if sms.media:
        Media.objects.bulk_create(
            Media(
                office=office,
                message=message,
                index=item.index,
                provider_url=item.url,
                content_type=item.content_type,
            )
            for item in sms.media
        )
    conversation_touch(conversation=conversation, message=message)

    from messages import tasks  # tasks import services; import here to keep the graph one-way at import time

    enqueue_on_commit(tasks.message_process, message.pk)
    return IntakeResult(message, created=True)
