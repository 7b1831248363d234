"""Hand-written statements for the call and voicemail rows that every voice webhook reads and writes.

A call makes six webhooks, at up to 50 new calls a second on a call-in day, and on this class of CPU one ORM
statement costs 0.6-2 ms to build and run against ~0.1 ms for a raw one (docs/performance.md, "Voice").
So the hot rows are read and written here by hand, as ``Message`` instances with only the columns the voice
services use (the others are deferred: touching one loads it, as with ``.only()``).

Two ways to change a row, both keeping the merge rules in Python (``calls``/``voicemail``):

- **locked**: :func:`call_locked` / :func:`voicemail_locked` take ``SELECT … FOR UPDATE`` inside the caller's
  transaction, then :func:`message_write` writes;
- **compare-and-set**: :func:`call_read` / :func:`voicemail_read` read without a lock or transaction, and
  :func:`message_write_if_unchanged` writes only if the columns it writes still hold what was read (one
  ``UPDATE … WHERE … IS NOT DISTINCT FROM …``); if someone wrote in between, nothing is written and the
  caller reads again. Two statements and no row lock, for a callback that changes one row.

Every writer of ``details``, ``body`` or ``duration_seconds`` of these rows goes through one of the two, or
through the ORM under ``select_for_update`` (the workers), so a compare-and-set never overwrites a change.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection

from messages.models import Channel, Conversation, Message

# The columns the voice services use, in the model's field order (``Model.from_db`` takes them so).
# ``details`` is read as text (Django loads jsonb as text with psycopg 3) and kept, so a compare-and-set can
# compare against exactly what was read.
_WANTED = frozenset(
    {
        "id",
        "office_id",
        "conversation_id",
        "channel",
        "provider_sid",
        "from_number",
        "to_number",
        "body",
        "duration_seconds",
        "details",
        "created_at",
    }
)
_COLUMNS = tuple(f.attname for f in Message._meta.concrete_fields if f.attname in _WANTED)
_DETAILS, _BODY, _DURATION = (_COLUMNS.index(name) for name in ("details", "body", "duration_seconds"))
_TABLE = Message._meta.db_table


@dataclass(slots=True)
class Read:
    """A row as read: the instance the services change, and the written columns' values as they were."""

    message: Message
    details_text: str
    body: str
    duration_seconds: int | None
    # The thread's status, for the call row read by a webhook that may add a voicemail to it.
    conversation_status: str = ""


def _select(where: str, *, lock: bool, with_thread: bool = False) -> str:
    columns = ", ".join(f"m.{name}" for name in _COLUMNS)
    if with_thread:
        conversation = Conversation._meta.db_table
        return (
            f"SELECT {columns}, c.status FROM {_TABLE} m JOIN {conversation} c ON c.id = m.conversation_id "  # noqa: S608
            f"WHERE {where}" + (" FOR UPDATE OF m" if lock else "")
        )
    return f"SELECT {columns}, '' FROM {_TABLE} m WHERE {where}" + (" FOR UPDATE" if lock else "")  # noqa: S608


@cache
def _sql(kind: str, lock: bool, with_thread: bool) -> str:
    where = "m.provider_sid = %s AND m.channel = %s"
    return _select(where, lock=lock, with_thread=with_thread)


def _fetch(sid: str, channel: str, *, lock: bool, with_thread: bool = False) -> Read | None:
    with connection.cursor() as cursor:
        cursor.execute(_sql(channel, lock, with_thread), [sid, channel])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row[: len(_COLUMNS)])
    details_text = values[_DETAILS]
    if not isinstance(details_text, str):  # a driver that decodes jsonb itself
        details_text = json.dumps(details_text)
    values[_DETAILS] = json.loads(details_text)
    message = Message.from_db(connection.alias, _COLUMNS, values)
    return Read(message, details_text, values[_BODY], values[_DURATION], row[len(_COLUMNS)] or "")


def call_read(call_sid: str, *, with_thread: bool = False) -> Read | None:
    """The call's row, unlocked (for a compare-and-set)."""
    return _fetch(call_sid, Channel.CALL, lock=False, with_thread=with_thread)


def call_locked(call_sid: str, *, with_thread: bool = False) -> Read | None:
    """The call's row, locked until the transaction ends; ``with_thread`` also reads the thread's status."""
    return _fetch(call_sid, Channel.CALL, lock=True, with_thread=with_thread)


def voicemail_read(recording_sid: str) -> Read | None:
    return _fetch(recording_sid, Channel.VOICEMAIL, lock=False)


def voicemail_locked(recording_sid: str) -> Read | None:
    return _fetch(recording_sid, Channel.VOICEMAIL, lock=True)


def _details(value: dict[str, Any]) -> Any:
    return Message._meta.get_field("details").get_db_prep_save(value, connection)


_WRITE = (
    f"UPDATE {_TABLE} SET details = %s, body = %s, duration_seconds = %s, "  # noqa: S608
    "status_updated_at = COALESCE(%s, status_updated_at) WHERE id = %s"
)
# What a ``then`` step can join as ``written``.
_RETURNING = "RETURNING id, conversation_id, created_at, body"


def message_write(
    message: Message, *, at: datetime | None = None, then: str = "", then_params: Sequence[Any] = ()
) -> None:
    """Write the row's ``details``, ``body``, ``duration_seconds`` (and ``status_updated_at``, if ``at``).

    ``then``: as for :func:`message_write_if_unchanged`, in the same statement.
    """
    params = [_details(message.details), message.body, message.duration_seconds, at, message.pk]
    sql = _WRITE
    if then:
        sql = f"WITH written AS ({_WRITE} {_RETURNING}){then} SELECT count(*) FROM written"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *then_params])


def message_write_if_unchanged(
    read: Read, *, at: datetime | None = None, then: str = "", then_params: Sequence[Any] = ()
) -> bool:
    """Write as :func:`message_write`, only if the row still holds what ``read`` saw. True if written.

    ``then`` is optional trusted SQL, ``, name AS (<data-modifying statement>)``, run in the same statement
    and so only when the row was written; it can join ``written`` (id, conversation_id, created_at, body).
    """
    message = read.message
    update = (
        _WRITE
        + " AND details = %s::jsonb AND body = %s AND duration_seconds IS NOT DISTINCT FROM %s "
        + _RETURNING
    )
    params = [
        _details(message.details),
        message.body,
        message.duration_seconds,
        at,
        message.pk,
        read.details_text,
        read.body,
        read.duration_seconds,
        *then_params,
    ]
    sql = f"WITH written AS ({update}){then} SELECT count(*) FROM written"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return bool(row and row[0])
