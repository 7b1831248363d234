"""Hand-written INSERTs for the webhook hot paths, built from the models' own metadata.

On this class of CPU one ORM statement costs 0.6-2 ms to build and run, a raw one about 0.1 ms
(docs/performance.md, "SMS ingest"). The inbound-text webhook must answer in a few milliseconds, so its few
statements are written by hand. These helpers keep those statements in step with the models: the column
list comes from ``_meta``, and values go through each field's own ``pre_save`` and ``get_db_prep_save``
(``auto_now_add``, JSON adaptation, time zones), exactly as the ORM would send them.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Field, Model


@cache
def insert_fields(model: type[Model]) -> tuple[Field[Any, Any], ...]:
    """The columns an INSERT writes: every concrete field but the auto primary key and generated ones."""
    return tuple(
        f for f in model._meta.concrete_fields if not f.primary_key and not getattr(f, "generated", False)
    )


@cache
def insert_sql(model: type[Model], *, conflict: str = "", returning: str = "id") -> str:
    """``INSERT INTO <table> (<every column>) VALUES (%s, …) <conflict> RETURNING <returning>``.

    ``conflict`` is an ``ON CONFLICT …`` clause or empty; it and ``returning`` are trusted SQL written in
    this code base, never input.
    """
    quote = connection.ops.quote_name
    fields = insert_fields(model)
    columns = ", ".join(quote(f.column) for f in fields)
    values = ", ".join(["%s"] * len(fields))
    table = quote(model._meta.db_table)
    return f"INSERT INTO {table} ({columns}) VALUES ({values}) {conflict} RETURNING {returning}"  # noqa: S608


def insert_params(instance: Model) -> list[Any]:
    """The values of ``instance`` for :func:`insert_sql`, prepared as the ORM prepares them."""
    return [
        f.get_db_prep_save(f.pre_save(instance, add=True), connection) for f in insert_fields(type(instance))
    ]
