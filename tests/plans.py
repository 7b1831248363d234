"""Query-plan assertions, for statements that must stay index lookups on tables of millions of rows."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection

# Autovacuum analyzes the test database's tables at moments nobody chose (after earlier tests inserted and
# rolled back rows), and on tiny analyzed tables a full scan of some other index, or a join from another
# table, costs what the lookup does, so the plan picked would depend on that timing. So the statement is
# planned as a fresh database plans it: every table never analyzed, with no column statistics and no row or
# page count, for which the planner assumes ten pages, some thousands of rows. The changes are undone with
# the test's transaction; they need a superuser, which the test database's owner is.
_AS_NEVER_ANALYZED = (
    "DELETE FROM pg_statistic WHERE starelid IN "
    "(SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)",
    "UPDATE pg_class SET reltuples = -1, relpages = 0 "
    "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'",
)


def as_never_analyzed(cursor: Any) -> None:
    """Plan every table as never analyzed (see above), for the rest of the transaction."""
    for statement in _AS_NEVER_ANALYZED:
        cursor.execute(statement)


def assert_table_found_by(sql: str, *, table: str, column: str) -> None:
    """Every scan of ``table`` in ``sql``'s plan is an index lookup on ``column``.

    Sequential scans are disabled first, and the tables are planned as never analyzed: on a test's tiny
    tables a scan may be the cheaper plan, and what the planner picks then shows only whether the index
    lookup is possible at all, which is what matters.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        as_never_analyzed(cursor)
        try:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            plan = cursor.fetchone()[0]
        finally:
            cursor.execute("RESET enable_seqscan")

    def nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
        return [node, *(found for child in node.get("Plans", []) for found in nodes(child))]

    scans = [node for node in nodes(plan[0]["Plan"]) if node.get("Relation Name") == table]
    assert scans, json.dumps(plan)
    for scan in scans:
        assert column in scan.get("Index Cond", ""), json.dumps(scan)
