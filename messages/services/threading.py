"""Which conversation a new message belongs to, and keeping its inbox summary current."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from common.rawsql import insert_params, insert_sql
from constituents.models import Constituent
from messages.models import Channel, Conversation, ConversationStatus, Direction, Message

PREVIEW_LENGTH = 160


@transaction.atomic
def conversation_for_inbound(*, constituent: Constituent, at: datetime) -> Conversation:
    """The constituent's unclosed thread; else one closed within the reopen window, reopened; else a new one.

    Locks and returns the row. See :func:`conversation_id_for_inbound`.
    """
    pk = conversation_id_for_inbound(office_id=constituent.office_id, constituent_id=constituent.pk, at=at)
    return Conversation.objects.get(pk=pk, office_id=constituent.office_id)


def conversation_id_for_inbound(*, office_id: int, constituent_id: int, at: datetime) -> int:
    """The id of the thread a new inbound message from this constituent belongs to, locked until commit.

    The constituent's unclosed thread; else their thread closed within CONVERSATION_REOPEN_WINDOW_HOURS,
    reopened; else a new one. Must run inside a transaction. Concurrent first messages from one number race
    on the partial unique index "one unclosed conversation per constituent": the loser of an INSERT gets no
    row back (``DO NOTHING``), the loser of a reopen gets a unique violation inside its savepoint, and both
    then lock the winner's thread.
    """
    window = timedelta(hours=settings.CONVERSATION_REOPEN_WINDOW_HOURS)
    with connection.cursor() as cursor:
        for _attempt in range(3):
            cursor.execute(_UNCLOSED_SQL, [constituent_id, ConversationStatus.CLOSED])
            row = cursor.fetchone()
            if row is not None:
                return int(row[0])
            try:
                with transaction.atomic():
                    cursor.execute(
                        _REOPEN_SQL,
                        [ConversationStatus.OPEN, constituent_id, ConversationStatus.CLOSED, at - window],
                    )
                    row = cursor.fetchone()
            except IntegrityError:
                continue  # someone else opened a thread for this constituent first: lock theirs
            if row is not None:
                return int(row[0])
            new = Conversation(
                office_id=office_id, constituent_id=constituent_id, last_activity_at=at, created_at=at
            )
            cursor.execute(_insert_sql(), insert_params(new))
            row = cursor.fetchone()
            if row is not None:
                return int(row[0])
    raise RuntimeError(f"no conversation for constituent {constituent_id} after three attempts")


_TABLE = Conversation._meta.db_table
_UNCLOSED_SQL = f"SELECT id FROM {_TABLE} WHERE constituent_id = %s AND status <> %s FOR UPDATE"  # noqa: S608
_REOPEN_SQL = (
    f"UPDATE {_TABLE} SET status = %s, closed_at = NULL WHERE id = ("  # noqa: S608
    f"SELECT id FROM {_TABLE} WHERE constituent_id = %s AND status = %s AND closed_at >= %s "
    "ORDER BY closed_at DESC LIMIT 1 FOR UPDATE) RETURNING id"
)


@cache
def _insert_sql() -> str:
    # The ON CONFLICT target names the partial unique index "conversation_one_unclosed_per_constituent".
    return insert_sql(
        Conversation, conflict="ON CONFLICT (constituent_id) WHERE NOT (status = 'closed') DO NOTHING"
    )


def preview_for(message: Message) -> str:
    return preview_text(message.body, message.channel)


def preview_text(body: str, channel: str) -> str:
    """The inbox preview of a message: its body on one line, or what it is if it has none."""
    if body:
        text = " ".join(body.split())
    else:
        text = {
            Channel.MMS: "[picture]",
            Channel.CALL: "[call]",
            Channel.VOICEMAIL: "[voicemail]",
        }.get(Channel(channel), "")
    return text[:PREVIEW_LENGTH]


@dataclass(frozen=True, slots=True)
class Touch:
    """A message's effect on its conversation's inbox summary."""

    at: datetime
    preview: str
    channel: str
    direction: Direction
    staff_reply: bool = False


def is_system_message(*, message: Message) -> bool:
    """A text the office sends on its own (auto-acknowledgement, HELP reply): outbound, no staff sender."""
    return message.direction == Direction.OUTBOUND and message.sent_by_id is None


def conversation_touch(*, conversation: Conversation, message: Message) -> None:
    """Fold a new message into its conversation's inbox summary (activity time, preview, unread).

    The summary is what staff triage by: what the constituent or a staffer last said, and when. A system
    message (:func:`is_system_message`) leaves the whole summary as it was, with no query: its text is the
    office's own boilerplate, so it must not replace the constituent's words in the preview, and it is not
    activity, so it moves neither ``last_activity_at`` (the inbox order) nor ``first_response_at``. Keeping
    time and preview together also keeps the preview the text of the message at ``last_activity_at``.
    """
    if is_system_message(message=message):
        return
    touch = Touch(
        at=message.created_at,
        preview=preview_for(message),
        channel=message.channel,
        direction=Direction(message.direction),
        staff_reply=bool(message.sent_by_id),
    )
    conversation_touch_where("id = %(id)s", {"id": conversation.pk}, touch)


def conversation_touch_where(where: str, where_params: dict[str, Any], touch: Touch) -> int | None:
    """Fold a message into the summary of the conversation matching ``where``; its id, or None if none did.

    One UPDATE. Activity time only moves forward. A constituent writing again wakes a snoozed or pending
    thread; the first staff reply sets the first-response time. ``where`` is trusted SQL written in this code
    base, with ``%(name)s`` placeholders for ``where_params``.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"{touch_sql_for(touch)} WHERE {where} RETURNING id", {**touch_params(touch), **where_params}
        )
        row = cursor.fetchone()
    return int(row[0]) if row is not None else None


def touch_params(touch: Touch) -> dict[str, Any]:
    """The parameters of :func:`touch_sql` (named ``touch_*``)."""
    return {"touch_at": touch.at, "touch_preview": touch.preview}


def touch_sql_for(touch: Touch) -> str:
    return touch_sql(
        inbound=touch.direction == Direction.INBOUND,
        first_response=touch.direction == Direction.OUTBOUND and touch.staff_reply,
        channel=Channel(touch.channel),
    )


@cache
def touch_sql(*, inbound: bool, first_response: bool, channel: Channel) -> str:
    """The UPDATE … SET of a touch, without its WHERE; the intake embeds it in its one-statement fast path.

    What kind of message it is (direction, channel, a staff reply or not) is written into the statement, so
    each of the few kinds is one prepared statement and a call sends only the time and the preview. Every
    SET expression reads the row as it was, so the wake-up tests the status before this update.
    """
    wakes = ", ".join(f"'{s.value}'" for s in (ConversationStatus.SNOOZED, ConversationStatus.PENDING))
    sets = [
        "last_activity_at = GREATEST(last_activity_at, %(touch_at)s)",
        "last_message_preview = %(touch_preview)s",
        f"last_message_channel = '{channel.value}'",
    ]
    if inbound:
        sets += [
            "last_inbound_at = %(touch_at)s",
            f"status = CASE WHEN status IN ({wakes}) THEN '{ConversationStatus.OPEN.value}' ELSE status END",
            f"snoozed_until = CASE WHEN status IN ({wakes}) THEN NULL ELSE snoozed_until END",
        ]
    if first_response:
        sets.append("first_response_at = COALESCE(first_response_at, %(touch_at)s)")
    return f"UPDATE {_TABLE} SET {', '.join(sets)}"  # noqa: S608
