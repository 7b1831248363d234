"""Inbound texts: verify → persist → acknowledge. No network I/O happens here; follow-up work is queued.

This is the hottest path in civicdesk (every text, at hundreds per second on a call-in day), so the common
case, a returning constituent with an open thread, is four hand-written statements in one transaction:

1. the duplicate check on the provider SID;
2. the constituent upsert (``constituents.services.constituent_ref_for_phone``);
3. one UPDATE that finds, locks and touches the constituent's unclosed thread;
4. the message INSERT, ``ON CONFLICT (provider_sid) DO NOTHING``.

A new or reopened thread, MMS media and anonymous senders take a few statements more. Processing (keywords,
consent, auto-replies, media download) happens in a worker: the committed row with ``processed_at`` NULL is
the record of that work, and the worker is woken by a coalesced nudge (``messages.services.inbound_queue``).
docs/architecture.md ("Inbound texts") explains the choices and docs/performance.md measures them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache

from django.db import connection, transaction
from django.utils import timezone

from civicdesk.rawsql import insert_params, insert_sql
from constituents.services import LocationHints, constituent_create_anonymous, constituent_ref_for_phone
from messages.models import Channel, Direction, Media, Message, MessageStatus
from messages.services.inbound_queue import inbound_nudge_on_commit
from messages.services.threading import (
    Touch,
    conversation_id_for_inbound,
    conversation_touch_where,
    preview_for,
)
from messages.twilio.payloads import InboundSms
from offices.selectors import office_number_route_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IntakeResult:
    message_id: int | None
    created: bool
    # Why nothing was stored, for logs: "unknown_number". Empty when a message id is returned.
    reason: str = ""

    @property
    def message(self) -> Message | None:
        return Message.objects.get(pk=self.message_id) if self.message_id is not None else None


class _LostRace(Exception):
    """A parallel copy of the same webhook committed its message first; roll ours back whole."""


def message_receive(*, sms: InboundSms) -> IntakeResult:
    """Store an inbound text once and thread it; its processing is queued on commit. Idempotent on its SID."""
    try:
        return _receive(sms)
    except _LostRace:
        winner = _message_id_for_sid(sms.message_sid)
        if winner is None:  # the conflict was not the race we expected
            raise
        return IntakeResult(winner, created=False)


@transaction.atomic
def _receive(sms: InboundSms) -> IntakeResult:
    existing = _message_id_for_sid(sms.message_sid)
    if existing is not None:
        return IntakeResult(existing, created=False)

    route = office_number_route_for(e164=sms.to_e164) if sms.to_e164 else None
    if route is None:
        logger.warning(
            "inbound SMS %s to unknown number %r: acknowledged, not stored", sms.message_sid, sms.to_raw
        )
        return IntakeResult(None, created=False, reason="unknown_number")

    office_id = route.office_id
    now = timezone.now()
    channel = Channel.MMS if sms.media else Channel.SMS
    message = Message(
        office_id=office_id,
        direction=Direction.INBOUND,
        channel=channel,
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
    touch = Touch(at=now, preview=preview_for(message), channel=channel, direction=Direction.INBOUND)

    if sms.from_e164:
        hints = LocationHints(city=sms.from_city, state=sms.from_state, zip_code=sms.from_zip)
        constituent_id = constituent_ref_for_phone(office_id=office_id, phone=sms.from_e164, hints=hints).id
        # The common case in one statement: the constituent's unclosed thread, locked and touched.
        conversation_id = conversation_touch_where(
            "constituent_id = %s AND status <> 'closed'", [constituent_id], touch
        )
    else:
        # Short codes, alphanumeric senders and "Anonymous" have no E.164 form; keep the raw sender on the
        # message and give the thread a constituent staff can fill in.
        constituent_id = constituent_create_anonymous(office_id=office_id).pk
        conversation_id = None
    if conversation_id is None:
        conversation_id = conversation_id_for_inbound(
            office_id=office_id, constituent_id=constituent_id, at=now
        )
        conversation_touch_where("id = %s", [conversation_id], touch)

    message.conversation_id = conversation_id
    with connection.cursor() as cursor:
        cursor.execute(_message_insert_sql(), insert_params(message))
        row = cursor.fetchone()
    if row is None:
        raise _LostRace
    message.pk = row[0]

    if sms.media:
        Media.objects.bulk_create(
            Media(
                office_id=office_id,
                message_id=message.pk,
                index=item.index,
                provider_url=item.url,
                content_type=item.content_type,
            )
            for item in sms.media
        )
    inbound_nudge_on_commit()
    return IntakeResult(message.pk, created=True)


def _message_id_for_sid(sid: str) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {Message._meta.db_table} WHERE provider_sid = %s", [sid])  # noqa: S608
        row = cursor.fetchone()
    return int(row[0]) if row is not None else None


@cache
def _message_insert_sql() -> str:
    return insert_sql(Message, conflict="ON CONFLICT (provider_sid) DO NOTHING")
