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

import psycopg
from django.conf import settings
from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.db.models import Field, Model
from psycopg import sql


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
    """The values of ``instance`` for :func:`insert_sql`, prepared as the ORM prepares them (plain text and
    auto-id foreign keys pass unchanged, as in :func:`insert_values`)."""
    plain = _plain_columns(type(instance))
    params = []
    for f in insert_fields(type(instance)):
        value = f.pre_save(instance, add=True)
        params.append(
            value if type(value) in plain.get(f.attname, ()) else f.get_db_prep_save(value, connection)
        )
    return params


def insert_select_sql(
    model: type[Model],
    *,
    prefix: str,
    given: tuple[str, ...],
    source: str = "",
    computed: tuple[tuple[str, str], ...] = (),
    conflict: str = "",
    returning: str = "id",
) -> str:
    """``INSERT INTO <table> (<every column>) SELECT … <source> <conflict> RETURNING …``, for a hot path.

    The form a data-modifying CTE needs. ``source`` is ``FROM``/``WHERE`` SQL that decides whether (and
    from which row) to insert; ``computed`` maps a column to an SQL expression over ``source`` (e.g. an id
    returned by an earlier CTE). The fields named in ``given`` (attnames) are parameters
    ``%(<prefix>_<attname>)s``, filled by :func:`insert_values`; every other field is written as the SQL
    literal of its model default, rendered once (``now()`` for ``auto_now``/``auto_now_add``), so a call
    prepares and sends only what varies. A field with a callable default must be given. Everything but the
    parameters is trusted SQL written in this code base. Call it only where a connection can be opened.
    """
    quote = connection.ops.quote_name
    expressions = dict(computed)
    fields = insert_fields(model)
    values = []
    for f in fields:
        if f.column in expressions:
            values.append(expressions[f.column])
        elif f.attname in given:
            values.append(f"%({prefix}_{f.attname})s")
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            values.append("now()")
        elif f.has_default() and callable(f.default):
            raise ValueError(f"{model.__name__}.{f.attname} has a callable default: pass it in `given`")
        else:
            values.append(_literal(f.get_db_prep_save(f.get_default(), connection)))
    columns = ", ".join(quote(f.column) for f in fields)
    table = quote(model._meta.db_table)
    return (
        f"INSERT INTO {table} ({columns}) SELECT {', '.join(values)} {source} {conflict} "
        f"RETURNING {returning}"
    )


def insert_values(model: type[Model], *, prefix: str, **values: Any) -> dict[str, Any]:
    """The parameters of an :func:`insert_select_sql` statement, prepared as the ORM prepares them.

    A ``str`` for a text column and an ``int`` for a foreign key to an auto id are what the ORM would send
    unchanged, so they skip the field's preparation (most of a webhook's values); everything else (JSON,
    dates, enums, other integers, which Django types for psycopg) goes through ``get_db_prep_save``.
    """
    fields = _fields_by_attname(model)
    plain = _plain_columns(model)
    return {
        f"{prefix}_{name}": value
        if type(value) in plain.get(name, ())
        else fields[name].get_db_prep_save(value, connection)
        for name, value in values.items()
    }


_TEXT_FIELDS = frozenset({"CharField", "TextField", "EmailField", "URLField", "SlugField"})


@cache
def _plain_columns(model: type[Model]) -> dict[str, tuple[type, ...]]:
    """attname -> the Python types whose values the column takes unprepared."""
    plain: dict[str, tuple[type, ...]] = {}
    for name, f in _fields_by_attname(model).items():
        target = f.target_field if f.is_relation else f  # type: ignore[attr-defined]  # a relation has one
        kind = target.get_internal_type()
        if f.is_relation and kind in ("AutoField", "BigAutoField"):
            plain[name] = (int,)
        elif kind in _TEXT_FIELDS:
            plain[name] = (str,)
    return plain


@cache
def _fields_by_attname(model: type[Model]) -> dict[str, Field[Any, Any]]:
    return {f.attname: f for f in insert_fields(model)}


def _literal(value: Any) -> str:
    """``value`` as an SQL literal, by psycopg's own adapters (quoting, casts, JSON)."""
    connection.ensure_connection()
    return sql.Literal(value).as_string(connection.connection)


class _PreparedCursor(psycopg.Cursor[Any]):
    """A server-side-binding cursor that prepares every statement it runs (psycopg keeps up to
    ``prepared_max`` per connection, and re-uses them by query text)."""

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
    ) -> Any:
        return super().execute(query, params, prepare=True, binary=binary)


class _LoggedPreparedCursor(_PreparedCursor):
    """For Django's query log (``DEBUG``, ``CaptureQueriesContext``): psycopg does not record the query it
    ran by name, where Django's ``last_executed_query`` reads it, so it is recorded here."""

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
    ) -> Any:
        super().execute(query, params, binary=binary)
        if self._query is None:
            self._query = self._convert_query(query, params)
        return self


# psycopg prepares a statement automatically after this many executions; so high that only the statements
# run through _PreparedCursor (which asks explicitly) are ever prepared.
EXPLICIT_PREPARE_ONLY = 2**31 - 1


def _allow_explicit_prepare(raw_connection: psycopg.Connection[Any]) -> None:
    """Let ``prepare=True`` take effect on this connection.

    Django opens psycopg connections with ``prepare_threshold=None`` (so that poolers keep working), and
    with ``None`` psycopg ignores ``prepare=True`` too: the statement is parsed and planned on every call,
    silently. The intake statement's planning costs PostgreSQL more than its execution, so it must really be
    prepared. A threshold no query reaches prepares exactly what asks, and nothing else: the ORM's
    client-side-binding cursors never prepare at all.
    """
    if raw_connection.prepare_threshold is None:
        raw_connection.prepare_threshold = EXPLICIT_PREPARE_ONLY


def fetchone_prepared(query: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    """Run a hot statement as a server-side prepared statement on Django's connection; its first row.

    Django sends every query as text with its parameters bound client-side, so PostgreSQL parses and plans
    it each time. For the intake's one big statement that is more than half of its server CPU (planning
    ~0.7 ms, execution ~0.6 ms), so it is prepared once per connection instead. The cursor goes through
    Django's wrappers, so query logging, ``CaptureQueriesContext`` and error translation work as for any
    query. Set ``DATABASE_PREPARED_STATEMENTS`` off behind a pooler that cannot keep prepared statements
    (PgBouncer before 1.21 in transaction mode).
    """
    cursor: CursorWrapper
    if settings.DATABASE_PREPARED_STATEMENTS:
        connection.ensure_connection()
        _allow_explicit_prepare(connection.connection)
        # django-stubs type the raw cursors as Django's own wrapper, hence Any.
        if connection.queries_logged:
            raw: Any = _LoggedPreparedCursor(connection.connection)
            cursor = connection.make_debug_cursor(raw)
        else:
            raw = _PreparedCursor(connection.connection)
            cursor = connection.make_cursor(raw)
    else:
        cursor = connection.cursor()
    with cursor:
        cursor.execute(query, params)
        row: tuple[Any, ...] | None = cursor.fetchone()
    return row
