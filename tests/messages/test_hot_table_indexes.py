"""The two hottest tables carry no redundant indexes, and every foreign key stays indexed (migration 0008)."""

from __future__ import annotations

import pytest
from django.db import connection

from messages.models import Conversation, Message

pytestmark = pytest.mark.django_db


def _leading_columns(table: str) -> dict[str, str]:
    """Index name -> its first column, for the table's plain-column indexes."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.relname, a.attname
            FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
            WHERE t.relname = %s AND x.indkey[0] <> 0
            """,
            [table],
        )
        return dict(cursor.fetchall())


@pytest.mark.parametrize("model", [Conversation, Message])
def test_every_foreign_key_leads_some_index(model: type[Conversation] | type[Message]) -> None:
    leading = set(_leading_columns(model._meta.db_table).values())
    foreign_keys = {f.column for f in model._meta.concrete_fields if f.is_relation}
    assert foreign_keys <= leading, f"unindexed foreign keys: {sorted(foreign_keys - leading)}"


def test_single_column_indexes_covered_by_composites_are_gone() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = ANY(%s)",
            [[Conversation._meta.db_table, Message._meta.db_table]],
        )
        names = {row[0] for row in cursor.fetchall()}
    assert "message_thread_order" in names  # the query sees the indexes at all
    for dropped in (
        "civicdesk_messages_conversation_office_id_4344392f",
        "civicdesk_messages_conversation_constituent_id_c6867e57",
        "civicdesk_messages_message_conversation_id_229ce587",
        "message_body_fts",
    ):
        assert dropped not in names
