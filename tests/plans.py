"""Query-plan assertions, for statements that must stay index lookups on tables of millions of rows."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection


def assert_table_found_by(sql: str, *, table: str, column: str) -> None:
    """Every scan of ``table`` in ``sql``'s plan is an index lookup on ``column``.

    Sequential scans are disabled first: on a test's tiny tables a scan may be the cheaper plan, and what
    the planner picks then shows only whether the index lookup is possible at all, which is what matters.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
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
