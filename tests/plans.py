"""Query-plan assertions, for statements that must stay index lookups on tables of millions of rows."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection

# Autovacuum analyzes the test database's tables at moments nobody chose (after earlier tests inserted and
# rolled back rows), and on a tiny analyzed table a full scan of some other index costs what the lookup does,
# so the plan picked would depend on that timing. So the table is analyzed here, which makes its column
# statistics those of the test's own rows every time, and then given the row and page counts of a table never
# analyzed (none), for which the planner assumes ten pages, some thousands of rows. The update is undone with
# the test's transaction; it needs a superuser, which the test database's owner is.
_AS_NEVER_ANALYZED = "UPDATE pg_class SET reltuples = -1, relpages = 0 WHERE oid = %s::regclass"


def as_never_analyzed(cursor: Any, *tables: str) -> None:
    """Analyze ``tables``, then give them the row and page counts of tables never analyzed (see above)."""
    for table in tables:
        cursor.execute(f"ANALYZE {table}")
        cursor.execute(_AS_NEVER_ANALYZED, [table])


def assert_table_found_by(sql: str, *, table: str, column: str) -> None:
    """Every scan of ``table`` in ``sql``'s plan is an index lookup on ``column``.

    Sequential scans are disabled first, and the table's statistics are set to those of a table never
    analyzed: on a test's tiny tables a scan may be the cheaper plan, and what the planner picks then shows
    only whether the index lookup is possible at all, which is what matters.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        as_never_analyzed(cursor, table)
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
