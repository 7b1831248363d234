"""civicdesk.postgres: inside a deadline, waits for PostgreSQL end when it is spent, and the connection is
replaced; outside one (the worker, beat, migrations, commands), nothing is bounded."""

from __future__ import annotations

import time

import pytest
from django.db import OperationalError, close_old_connections, connection

from civicdesk.postgres.base import DatabaseDeadlineExceeded, deadline

pytestmark = pytest.mark.django_db(transaction=True)

SLEEP_SECONDS = 2.0
DEADLINE_SECONDS = 0.2


def sleep_on_server(seconds: float) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [seconds])


def test_a_statement_longer_than_the_deadline_is_cut_at_the_deadline_and_the_connection_replaced() -> None:
    connection.ensure_connection()
    started = time.monotonic()
    with deadline(DEADLINE_SECONDS), pytest.raises(OperationalError) as raised:
        sleep_on_server(SLEEP_SECONDS)
    elapsed = time.monotonic() - started
    assert isinstance(raised.value.__cause__, DatabaseDeadlineExceeded)
    assert elapsed < DEADLINE_SECONDS + 0.5, f"cut after {elapsed:.2f}s"
    assert connection.connection is not None
    assert connection.connection.closed  # never reused in the middle of the protocol
    close_old_connections()  # what Django does when the request ends
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_outside_a_deadline_and_after_one_waits_are_not_bounded() -> None:
    with deadline(DEADLINE_SECONDS):
        sleep_on_server(0.0)  # spends almost nothing of it
    sleep_on_server(DEADLINE_SECONDS * 2)  # the deadline is over: a long statement runs to its end
