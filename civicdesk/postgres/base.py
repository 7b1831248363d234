"""Django's PostgreSQL backend (psycopg 3), with an optional deadline on every wait for the server.

A PostgreSQL that accepts connections and never answers (a stuck failover, a pooler queueing clients, an
overloaded host) is not bounded by anything the server enforces: ``statement_timeout`` never starts for a
query the server never reads, and libpq's ``tcp_user_timeout`` and keepalives only notice a dead network
path, not a live TCP peer that is silent. libpq's own ``connect_timeout`` cannot go below 2 s. So the
client bounds its waits itself: inside :func:`deadline`, this thread's connections wait for the server
(connecting, the health check, each statement, commit) at most that long in all. When the time is up, the
connection is closed, since it is in the middle of the protocol, and :class:`DatabaseDeadlineExceeded`
(an ``OperationalError``) is raised; Django's next use of the connection opens a new one. Outside a
deadline nothing changes: the worker, beat, migrations and commands wait as long as their statements take.

``civicdesk.middleware.WebhookDeadlineMiddleware`` puts every Twilio webhook under
``WEBHOOK_DATABASE_DEADLINE_SECONDS``.
"""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db.backends.postgresql import base
from psycopg import errors
from psycopg.abc import RV, PQGen

_state = threading.local()
_WAIT_INTERVAL = 0.1  # psycopg's: how often a wait wakes up to check for Ctrl-C (and, here, the deadline)


class DatabaseDeadlineExceeded(psycopg.OperationalError):
    """The server did not answer within the deadline; the connection was closed."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Let this thread's connections wait for PostgreSQL at most ``seconds`` in all, from now on.

    A budget of time spent waiting for the server, not of wall-clock time: a request's own work (the
    first request of a process imports the views) does not count against it.
    """
    previous = getattr(_state, "left", None)
    _state.left = seconds
    try:
        yield
    finally:
        _state.left = previous


def _remaining() -> float | None:
    left: float | None = getattr(_state, "left", None)
    return left


def _spend(seconds: float) -> None:
    left: float | None = getattr(_state, "left", None)
    if left is not None:
        _state.left = left - seconds


def _expired() -> DatabaseDeadlineExceeded:
    return DatabaseDeadlineExceeded("PostgreSQL did not answer within the request's deadline")


class DeadlineConnection(psycopg.Connection[Any]):
    """A psycopg connection whose waits for the server end at this thread's :func:`deadline`, if any."""

    def wait(self, gen: PQGen[RV], interval: float = _WAIT_INTERVAL, timeout: float | None = None) -> RV:
        remaining = _remaining()
        if remaining is None or (timeout is not None and timeout <= remaining):
            return super().wait(gen, interval=interval, timeout=timeout)  # no deadline, or a shorter wait
        started = time.monotonic()
        try:
            return super().wait(gen, interval=interval, timeout=max(remaining, 0.0))
        except errors._WaitTimeout as exc:  # psycopg's own: the wait's timeout expired
            self.close()  # in the middle of the protocol: the connection cannot be used again
            raise _expired() from exc
        finally:
            _spend(time.monotonic() - started)

    @classmethod
    def _connect_gen(cls, conninfo: str = "") -> Any:
        # psycopg's connect() drives this generator, resuming it at least every 0.1 s while it waits, and
        # enforces only connect_timeout (at least 2 s, as libpq does); the deadline is checked between steps.
        return _bounded(super()._connect_gen(conninfo))


def _bounded(gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    if _remaining() is None:
        return (yield from gen)
    step = next(gen)
    try:
        while True:
            waiting_since = time.monotonic()
            ready = yield step
            _spend(time.monotonic() - waiting_since)
            remaining = _remaining()
            if remaining is not None and remaining <= 0:
                gen.close()
                raise _expired()
            step = gen.send(ready)
    except StopIteration as done:
        return done.value


class _Psycopg(types.ModuleType):
    """psycopg as Django's backend uses it (``DatabaseWrapper.Database``), connecting with the class above."""

    def __getattr__(self, name: str) -> Any:
        return getattr(psycopg, name)

    @staticmethod
    def connect(*args: Any, **kwargs: Any) -> DeadlineConnection:
        return DeadlineConnection.connect(*args, **kwargs)


class DatabaseWrapper(base.DatabaseWrapper):
    Database = _Psycopg("psycopg")
