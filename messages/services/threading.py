"""Which conversation a new message belongs to, and keeping its inbox summary current."""

from __future__ import annotations

from collections.abc import Sequence
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

# The conflict clauses of the unique indexes a new message or thread may race on, written once here and
# reused by every INSERT that needs them. A message is stored once per provider SID (the unique
# ``Message.provider_sid``); a constituent has at most one unclosed thread (the partial unique index
# "conversation_one_unclosed_per_constituent", whose predicate the clause must repeat exactly).
MESSAGE_SID_CONFLICT = "ON CONFLICT (provider_sid) DO NOTHING"
CONVERSATION_UNCLOSED_CONFLICT = "ON CONFLICT (constituent_id) WHERE NOT (status = 'closed') DO NOTHING"


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
    return insert_sql(Conversation, conflict=CONVERSATION_UNCLOSED_CONFLICT)


def preview_for(message: Message) -> str:
    return preview_text(message.body, message.channel, duration_seconds=message.duration_seconds)


def preview_text(body: str, channel: str, *, duration_seconds: int | None = None) -> str:
    """The inbox preview of a message: its body on one line, or what it is if it has none.

    A voicemail without a transcript says how long it is ("Voicemail, 0:42"). A call's preview depends on
    facts only the voice app knows (who answered, the outcome), so the voice app computes it and hands it
    to the writer below; "Call" is what a call with no such facts shows.
    """
    if body:
        text = " ".join(body.split())
    elif channel == Channel.VOICEMAIL:
        text = (
            f"Voicemail, {duration_seconds // 60}:{duration_seconds % 60:02d}"
            if duration_seconds
            else "Voicemail"
        )
    else:
        text = {Channel.MMS: "[picture]", Channel.CALL: "Call"}.get(Channel(channel), "")
    return text[:PREVIEW_LENGTH]


# --- the inbox summary: its one writer ----------------------------------------------------------------------
#
# The inbox summary of a conversation (last_activity_at, last_message_preview, last_message_channel,
# last_inbound_at, the wake-up of a snoozed or pending thread, first_response_at) is written only by the
# functions below: every service that adds a message to a thread, whatever its channel, states what kind of
# message it is and gets its SQL (or, for the bulk demo seed, the same rule applied in Python) from here.


@dataclass(frozen=True, slots=True)
class SummaryKind:
    """What a message does to its thread's summary; each kind is one fixed statement."""

    channel: Channel
    # A message from the constituent that asks staff for attention: it marks the thread unread and wakes a
    # snoozed or pending one. A call alone does not (a voicemail does).
    attention: bool = False
    # A staff member's reply: the first one sets the thread's first-response time.
    first_response: bool = False


def summary_kind(*, direction: str, channel: str, staff_reply: bool) -> SummaryKind:
    """The kind of a message of this direction and channel (``staff_reply``: it has a staff sender)."""
    return SummaryKind(
        channel=Channel(channel),
        attention=direction == Direction.INBOUND and channel != Channel.CALL,
        first_response=direction == Direction.OUTBOUND and staff_reply,
    )


@dataclass(frozen=True, slots=True)
class Touch:
    """A message's effect on its conversation's inbox summary."""

    at: datetime
    preview: str
    channel: str
    direction: Direction
    staff_reply: bool = False

    @property
    def kind(self) -> SummaryKind:
        return summary_kind(direction=self.direction, channel=self.channel, staff_reply=self.staff_reply)


def _summary_columns(kind: SummaryKind, *, at: str, preview: str) -> list[tuple[str, str, str | None]]:
    """(column, its value after an UPDATE folding the message in, its value in a thread the message starts).

    ``at`` and ``preview`` are SQL expressions (parameters, or columns of a joined row). Every UPDATE
    expression reads the row as it was, so the wake-up tests the status before this update. Activity time
    only moves forward, and the preview and channel are those of the message at the activity time: a message
    folded in late (an older timestamp) changes neither. A new thread's status is the model's default (open).
    """
    latest = f"{at} >= last_activity_at"
    columns: list[tuple[str, str, str | None]] = [
        ("last_activity_at", f"GREATEST(last_activity_at, {at})", at),
        ("last_message_preview", f"CASE WHEN {latest} THEN {preview} ELSE last_message_preview END", preview),
        (
            "last_message_channel",
            f"CASE WHEN {latest} THEN '{kind.channel.value}' ELSE last_message_channel END",
            f"'{kind.channel.value}'",
        ),
    ]
    if kind.attention:
        wakes = ", ".join(f"'{s.value}'" for s in (ConversationStatus.SNOOZED, ConversationStatus.PENDING))
        opened = ConversationStatus.OPEN.value
        columns += [
            ("last_inbound_at", f"GREATEST(last_inbound_at, {at})", at),
            ("status", f"CASE WHEN status IN ({wakes}) THEN '{opened}' ELSE status END", None),
            ("snoozed_until", f"CASE WHEN status IN ({wakes}) THEN NULL ELSE snoozed_until END", None),
        ]
    if kind.first_response:
        columns.append(("first_response_at", f"LEAST(first_response_at, {at})", at))
    return columns


def conversation_summary_sets(kind: SummaryKind, *, at: str, preview: str) -> str:
    """The SET list of an UPDATE of ``Conversation`` that folds a message of ``kind`` into its summary."""
    return ", ".join(
        f"{column} = {update}" for column, update, _new in _summary_columns(kind, at=at, preview=preview)
    )


def conversation_summary_new(kind: SummaryKind, *, at: str, preview: str) -> tuple[tuple[str, str], ...]:
    """The summary columns of a thread a message of ``kind`` starts, as (column, SQL expression) pairs for
    ``common.rawsql.insert_select_sql``'s ``computed``; the thread's own columns are the caller's."""
    return tuple(
        (column, new) for column, _update, new in _summary_columns(kind, at=at, preview=preview) if new
    )


@cache
def conversation_summary_sql(kind: SummaryKind) -> str:
    """``UPDATE <conversations> SET …`` folding a message in, without its WHERE; parameters ``touch_at``
    and ``touch_preview`` (:func:`touch_params`). The intake embeds it in its one-statement fast path.

    What kind of message it is is written into the statement, so each of the few kinds is one prepared
    statement and a call sends only the time and the preview.
    """
    sets = conversation_summary_sets(kind, at="%(touch_at)s", preview="%(touch_preview)s")
    return f"UPDATE {_TABLE} SET {sets}"  # noqa: S608


@cache
def conversation_summary_then(kind: SummaryKind) -> str:
    """The fold as a step of a message's compare-and-set (``voice.services.rows``): ``, touched AS (…)``.

    The message's row, ``written`` (id, conversation_id, created_at), gives the thread and the time; its one
    positional parameter is the preview.
    """
    sets = conversation_summary_sets(kind, at="written.created_at", preview="%s")
    return (
        f", touched AS (UPDATE {_TABLE} AS c SET {sets} FROM written "  # noqa: S608
        "WHERE c.id = written.conversation_id RETURNING c.id)"
    )


@cache
def conversation_preview_then(channel: Channel) -> str:
    """A new preview for the message ``written`` (see :func:`conversation_summary_then`), shown only while
    it is its thread's latest message (same time, same channel): ``, refreshed AS (…)``; one positional
    parameter, the preview."""
    return (
        f", refreshed AS (UPDATE {_TABLE} AS c SET last_message_preview = %s FROM written "  # noqa: S608
        "WHERE c.id = written.conversation_id AND c.last_activity_at = written.created_at "
        f"AND c.last_message_channel = '{channel.value}' RETURNING c.id)"
    )


def conversation_preview_refresh(
    *, conversation_id: int, at: datetime, channel: Channel, preview: str
) -> None:
    """A message's new preview (a voicemail's transcript, a call's outcome), shown only while the message at
    ``at`` on ``channel`` is still the thread's latest."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_TABLE} SET last_message_preview = %s WHERE id = %s "  # noqa: S608
            f"AND last_activity_at = %s AND last_message_channel = '{channel.value}'",
            [preview[:PREVIEW_LENGTH], conversation_id, at],
        )


def conversation_summary_apply(conversation: Conversation, touch: Touch) -> None:
    """The same fold as :func:`conversation_summary_sql`, on an unsaved instance (the bulk demo seed)."""
    kind = touch.kind
    if touch.at >= conversation.last_activity_at:
        conversation.last_message_preview = touch.preview
        conversation.last_message_channel = kind.channel
    conversation.last_activity_at = max(conversation.last_activity_at, touch.at)
    if kind.attention:
        conversation.last_inbound_at = max(filter(None, (conversation.last_inbound_at, touch.at)))
        if conversation.status in (ConversationStatus.SNOOZED, ConversationStatus.PENDING):
            conversation.status = ConversationStatus.OPEN
            conversation.snoozed_until = None
    if kind.first_response:
        conversation.first_response_at = min(filter(None, (conversation.first_response_at, touch.at)))


def conversation_summary_fold(conversation: Conversation, touches: Sequence[Touch]) -> None:
    """The summary of a thread that holds exactly these messages (in order), on an unsaved instance: as if
    each had been folded in by the services as it came. The bulk demo seed writes its threads so."""
    if not touches:
        return
    conversation.last_activity_at = touches[0].at
    for touch in touches:
        conversation_summary_apply(conversation, touch)


def is_system_message(*, message: Message) -> bool:
    """A text the office sends on its own (auto-acknowledgement, HELP reply): outbound, no staff sender."""
    return message.direction == Direction.OUTBOUND and message.sent_by_id is None


def touch_for(message: Message, *, preview: str | None = None) -> Touch:
    """The message's touch; ``preview`` overrides :func:`preview_for` (a call's, from the voice app)."""
    return Touch(
        at=message.created_at,
        preview=preview_for(message) if preview is None else preview,
        channel=message.channel,
        direction=Direction(message.direction),
        staff_reply=bool(message.sent_by_id),
    )


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
    conversation_touch_where("id = %(id)s", {"id": conversation.pk}, touch_for(message))


def conversation_touch_where(
    where: str, where_params: dict[str, Any], touch: Touch, *, returning: str = "id"
) -> tuple[Any, ...] | None:
    """Fold a message into the summary of the conversation matching ``where``; the ``returning`` columns of
    the row it changed, or None if none matched.

    One UPDATE (:func:`conversation_summary_sql`). ``where`` and ``returning`` are trusted SQL written in this
    code base, with ``%(name)s`` placeholders for ``where_params``.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"{conversation_summary_sql(touch.kind)} WHERE {where} RETURNING {returning}",
            {**touch_params(touch), **where_params},
        )
        row = cursor.fetchone()
    return tuple(row) if row is not None else None


def touch_params(touch: Touch) -> dict[str, Any]:
    """The parameters of :func:`conversation_summary_sql` (named ``touch_*``)."""
    return {"touch_at": touch.at, "touch_preview": touch.preview[:PREVIEW_LENGTH]}
