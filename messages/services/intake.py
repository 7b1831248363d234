"""Inbound texts: verify → persist → acknowledge. No network I/O happens here; follow-up work is queued.

This is the hottest path in civicdesk (every text, at hundreds per second on a call-in day). The common
cases, a plain text from a constituent with an open thread and a first text from a new number, are ONE
statement, its own transaction (:func:`_fast_sql`): it checks the SID, upserts the constituent, locks the
open thread or starts one, inserts the message unless its SID is stored already, and folds it into the
thread's inbox summary only if it was inserted. Everything else (a thread to reopen, MMS media, senders
with no E.164 number, a lost race) takes :func:`_receive`, one ordinary transaction of a few statements.
Nothing is ever half-written: the fast statement either stores the message with its thread and summary or
changes nothing but, at most, a new constituent row, which the slow path then finds.

Processing (keywords, consent, auto-replies, media download) happens in a worker: the committed row with
``processed_at`` NULL is the record of that work, and a coalesced nudge wakes the worker
(``messages.services.inbound_queue``). docs/architecture.md ("Inbound texts") explains the choices and
docs/performance.md ("SMS ingest") measures them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import DataError, connection, transaction
from django.utils import timezone

from common.rawsql import fetchone_prepared, insert_params, insert_select_sql, insert_sql, insert_values
from constituents.models import Constituent, SmsConsent
from constituents.services import (
    CONSTITUENT_PHONE_CONFLICT,
    HINT_FIELDS,
    LocationHints,
    consent_from_text,
    constituent_create_anonymous,
    constituent_hints_fill,
    constituent_new_values,
    constituent_ref_for_phone,
)
from messages.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Direction,
    Media,
    Message,
    MessageStatus,
)
from messages.services.inbound_queue import inbound_nudge_on_commit
from messages.services.threading import (
    CONVERSATION_UNCLOSED_CONFLICT,
    MESSAGE_SID_CONFLICT,
    SummaryKind,
    Touch,
    conversation_id_for_inbound,
    conversation_summary_new,
    conversation_summary_sql,
    conversation_touch_where,
    preview_text,
    touch_params,
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
    route = office_number_route_for(e164=sms.to_e164) if sms.to_e164 else None
    if route is None:
        existing = _message_id_for_sid(sms.message_sid)  # e.g. a number released after it was used
        if existing is not None:
            return IntakeResult(existing, created=False)
        logger.warning(
            "inbound SMS %s to unknown number %r: acknowledged, not stored", sms.message_sid, sms.to_raw
        )
        return IntakeResult(None, created=False, reason="unknown_number")

    office_id = route.office_id
    values = _message_values(sms, office_id=office_id)
    if sms.from_e164 and not sms.media:
        result = _receive_fast(sms, values, office_id=office_id, phone=sms.from_e164)
        if result is not None:
            return result
    try:
        return _receive(sms, values, office_id=office_id)
    except _LostRace:
        winner = _message_id_for_sid(sms.message_sid)
        if winner is None:  # the conflict was not the race we expected
            raise
        return IntakeResult(winner, created=False)


def _message_values(sms: InboundSms, *, office_id: int) -> dict[str, Any]:
    """The new message's fields; the others keep the model's defaults. Both paths insert exactly these."""
    return {
        "office_id": office_id,
        "direction": Direction.INBOUND,
        "channel": Channel.MMS if sms.media else Channel.SMS,
        "body": sms.body,
        "provider_sid": sms.message_sid,
        "status": MessageStatus.RECEIVED,
        "from_number": sms.from_raw[:32],
        "to_number": sms.to_raw[:32],
        "created_at": timezone.now(),
        "details": {
            "opt_out_type": sms.opt_out_type or "",
            "num_media_declared": sms.num_media,
            "messaging_service_sid": sms.messaging_service_sid,
            "account_sid": sms.account_sid,
        },
    }


def _touch(values: dict[str, Any]) -> Touch:
    return Touch(
        at=values["created_at"],
        preview=preview_text(values["body"], values["channel"]),
        channel=values["channel"],
        direction=Direction.INBOUND,
    )


def _hints(sms: InboundSms) -> LocationHints:
    return LocationHints(city=sms.from_city, state=sms.from_state, zip_code=sms.from_zip)


def _receive_fast(
    sms: InboundSms, values: dict[str, Any], *, office_id: int, phone: str
) -> IntakeResult | None:
    """The one-statement path. None if the text needs the slow path; then nothing was stored but, at most,
    a new constituent."""
    hints = _hints(sms)
    constituent = constituent_new_values(office_id, phone, hints)
    shared, constants, given = _FAST_MESSAGE_FIELDS
    if (
        values.keys() != shared.keys() | constants.keys() | set(given)
        or any(values[name] != value for name, value in constants.items())
        or constituent.keys() != {"office_id", "phone", *HINT_FIELDS}
    ):  # both paths must insert the same fields: a new one has to be added to the statement too
        raise RuntimeError("the intake statement does not match the fields of a new message or constituent")
    params: dict[str, Any] = {
        "phone": phone,
        "reopen_after": values["created_at"] - timedelta(hours=settings.CONVERSATION_REOPEN_WINDOW_HOURS),
        **{param: values[name] for name, param in shared.items()},
        **insert_values(Constituent, prefix="c", **{name: constituent[name] for name in HINT_FIELDS}),
        **insert_values(Message, prefix="m", **{name: values[name] for name in given}),
        **touch_params(_touch(values)),
    }
    try:
        if connection.in_atomic_block:  # the guard's error must not break the caller's transaction
            with transaction.atomic():
                row = fetchone_prepared(_fast_sql(), params)
        else:
            row = fetchone_prepared(_fast_sql(), params)
    except DataError as exc:
        if _THREAD_WITHOUT_MESSAGE not in str(exc):
            raise
        return None  # the statement was undone whole; the slow path sorts out the race
    if row is None:  # the statement always returns one row
        raise RuntimeError("the intake statement returned no row")
    duplicate_of, message_id, _guard, constituent_id, created, *carrier = row
    if duplicate_of is not None:
        return IntakeResult(duplicate_of, created=False)
    if constituent_id is not None and not created:
        constituent_hints_fill(constituent_id=constituent_id, hints=hints, current=tuple(carrier))
    if message_id is None:
        return None
    inbound_nudge_on_commit()
    return IntakeResult(message_id, created=True)


@transaction.atomic
def _receive(sms: InboundSms, values: dict[str, Any], *, office_id: int) -> IntakeResult:
    """A new or reopened thread, media, a sender with no E.164 number: one transaction, a few statements."""
    existing = _message_id_for_sid(sms.message_sid)
    if existing is not None:
        return IntakeResult(existing, created=False)
    if sms.from_e164:
        ref = constituent_ref_for_phone(office_id=office_id, phone=sms.from_e164, hints=_hints(sms))
        constituent_id = ref.id
        if not ref.created:  # someone known only from calls: this first text implies consent
            consent_from_text(constituent_id=constituent_id, message_sid=sms.message_sid)
    else:
        # Short codes, alphanumeric senders and "Anonymous" have no E.164 form; keep the raw sender on the
        # message and give the thread a constituent staff can fill in.
        constituent_id = constituent_create_anonymous(office_id=office_id).pk
    conversation_id = conversation_id_for_inbound(
        office_id=office_id, constituent_id=constituent_id, at=values["created_at"]
    )
    message = Message(conversation_id=conversation_id, **values)
    with connection.cursor() as cursor:
        cursor.execute(_message_insert_sql(), insert_params(message))
        row = cursor.fetchone()
    if row is None:
        raise _LostRace
    message.pk = row[0]
    conversation_touch_where("id = %(id)s", {"id": conversation_id}, _touch(values))

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
    return insert_sql(Message, conflict=MESSAGE_SID_CONFLICT)


# The fast path's message fields: (field -> the statement's shared parameter, field -> the one value the fast
# path inserts, written into the statement, fields passed as their own ``m_*`` parameters).
_FAST_MESSAGE_FIELDS: tuple[dict[str, str], dict[str, str], tuple[str, ...]] = (
    {"office_id": "office_id", "provider_sid": "sid", "created_at": "touch_at"},
    {"direction": Direction.INBOUND, "channel": Channel.SMS, "status": MessageStatus.RECEIVED},
    ("body", "from_number", "to_number", "details"),
)


@cache
def _fast_sql() -> str:
    """One statement: SID check, constituent upsert, thread lock or start, message insert, thread summary.

    Each step after the first runs only if the one before allows it: nothing is inserted for a known SID;
    a thread is started only if the constituent has no unclosed one and none closed within the reopen
    window; a message is inserted only into an unclosed thread; the thread is touched only if the message
    was inserted (a parallel copy of the same webhook that lost the race on the SID changes nothing, and a
    race that would leave a started thread without its message fails the statement). Values
    shared between steps are one parameter each, and the fast path's constants are written into the SQL:
    every parameter costs the webhook its adaptation on every call.
    """
    hints = ", ".join(HINT_FIELDS)
    shared, constants, given = _FAST_MESSAGE_FIELDS
    new_constituent = insert_select_sql(
        Constituent,
        prefix="c",
        given=HINT_FIELDS,
        computed=(("office_id", "%(office_id)s"), ("phone", "%(phone)s")),
        source="WHERE NOT EXISTS (SELECT 1 FROM dup)",
        conflict=CONSTITUENT_PHONE_CONFLICT,
        returning=f"id, true, {hints}",
    )
    new_message = insert_select_sql(
        Message,
        prefix="m",
        given=given,
        source="FROM thread WHERE NOT EXISTS (SELECT 1 FROM dup)",
        computed=(
            ("conversation_id", "thread.id"),
            *((name, f"%({param})s") for name, param in shared.items()),
            *((name, f"'{value}'") for name, value in constants.items()),
        ),
        conflict=MESSAGE_SID_CONFLICT,
        returning="id, conversation_id",
    )
    kind = _FAST_KIND
    touch = conversation_summary_sql(kind)
    messages, constituents = Message._meta.db_table, Constituent._meta.db_table
    conversations = Conversation._meta.db_table
    closed = ConversationStatus.CLOSED.value
    # A first text (or the first after a thread was closed longer ago than the reopen window) starts a thread
    # with its inbox summary already written: the statement's later steps cannot see a row it inserted, so
    # "touched" below finds nothing to update for it. A thread closed within the window is reopened by the
    # slow path instead, so none is started then.
    new_thread = insert_select_sql(
        Conversation,
        prefix="t",
        given=(),
        computed=(
            ("office_id", "%(office_id)s"),
            ("constituent_id", "(SELECT id FROM constituent)"),
            *conversation_summary_new(kind, at="%(touch_at)s", preview="%(touch_preview)s"),
            ("created_at", "%(touch_at)s"),
        ),
        source=(
            "WHERE NOT EXISTS (SELECT 1 FROM dup) AND NOT EXISTS (SELECT 1 FROM open_thread) "  # noqa: S608
            "AND EXISTS (SELECT 1 FROM constituent) "
            f"AND NOT EXISTS (SELECT 1 FROM {conversations} "
            f"WHERE constituent_id = (SELECT id FROM constituent) AND status = '{closed}' "
            "AND closed_at >= %(reopen_after)s)"
        ),
        conflict=CONVERSATION_UNCLOSED_CONFLICT,
    )
    return (
        f"WITH dup AS (SELECT id FROM {messages} WHERE provider_sid = %(sid)s), "  # noqa: S608
        f"new_constituent AS ({new_constituent}), "
        f"constituent AS (SELECT * FROM new_constituent UNION ALL SELECT id, false, {hints} "
        # "phone <> ''" lets the generic plan of the prepared statement use the partial unique index: without
        # it, it scanned every constituent of the office.
        f"FROM {constituents} WHERE office_id = %(office_id)s AND phone = %(phone)s "
        # Someone known only from calls has given no consent to texts: their first text takes the ordinary
        # path, which records the consent it implies.
        f"AND phone <> '' AND sms_consent <> '{SmsConsent.NONE.value}' LIMIT 1), "
        f"open_thread AS (SELECT id FROM {conversations} WHERE constituent_id = (SELECT id FROM constituent) "
        f"AND status <> '{closed}' FOR UPDATE), "
        f"new_thread AS ({new_thread}), "
        "thread AS (SELECT id FROM open_thread UNION ALL SELECT id FROM new_thread), "
        f"new_message AS ({new_message}), "
        f"touched AS ({touch} WHERE id = (SELECT conversation_id FROM new_message) RETURNING id) "
        "SELECT (SELECT id FROM dup), (SELECT id FROM new_message), "
        # A thread started without its message would be a half-written intake: the message can lose only a
        # race on its SID, to a copy of the webhook from another sender. Failing the statement undoes it all.
        # (The text is not a constant, so the planner cannot fold the cast and fail every call.)
        "CASE WHEN EXISTS (SELECT 1 FROM new_thread) AND NOT EXISTS (SELECT 1 FROM new_message) "
        f"THEN CAST('{_THREAD_WITHOUT_MESSAGE} ' || (SELECT id FROM new_thread) AS integer) END, c.* "
        "FROM (SELECT 1) AS one LEFT JOIN constituent AS c ON true"
    )


# What a plain text does to its thread's summary (the only kind the fast path stores).
_FAST_KIND = SummaryKind(channel=Channel.SMS, attention=True)

# In the error PostgreSQL raises when the intake statement would start a thread without storing its message.
_THREAD_WITHOUT_MESSAGE = "intake: a new thread without its message"
