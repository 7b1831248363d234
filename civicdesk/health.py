"""``/healthz``: 200 when PostgreSQL and Redis both answer, else 503 with the reason, within a second.

A check that does not finish within the probe's deadline, or gives up on its own timeout (an engine that
accepts connections and never answers), is reported as "timed out"; any other failure as its error.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable
from typing import Any

import psycopg
import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

# The probe's answer is due this long after it began, whatever the engines do.
DEADLINE_SECONDS = 0.9
DATABASE_CONNECT_TIMEOUT_SECONDS = 2  # libpq's least
DATABASE_STATEMENT_TIMEOUT_MS = 800
# The engines' own ways of saying that they did not answer in time.
_TIMEOUTS = (
    TimeoutError,
    redis.exceptions.TimeoutError,
    psycopg.errors.ConnectionTimeout,
    psycopg.errors.QueryCanceled,  # statement_timeout
)

# Checks run in a small pool so a hung engine costs the probe at most the deadline, not a thread per call.
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="healthz")


def _database_params() -> dict[str, object]:
    # Read in the request thread: Django's connection object is thread-local.
    params = dict(connection.get_connection_params())
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    params.pop("connect_timeout", None)  # the probe's own, below
    return params


def _check_database(params: dict[str, Any]) -> None:
    # A dedicated connection, not Django's: a dead server must not poison the request's connection.
    with psycopg.connect(**params, connect_timeout=DATABASE_CONNECT_TIMEOUT_SECONDS, autocommit=True) as conn:
        conn.execute(f"SET statement_timeout = {DATABASE_STATEMENT_TIMEOUT_MS}")
        conn.execute("SELECT 1")


def _check_redis(url: str) -> None:
    timeout = settings.HEALTHZ_TIMEOUT_SECONDS
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


def checks() -> dict[str, Callable[[], None]]:
    """The probes, bound to this request's settings."""
    params, url = _database_params(), settings.REDIS_URL
    return {"database": lambda: _check_database(params), "redis": lambda: _check_redis(url)}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    deadline = time.monotonic() + DEADLINE_SECONDS
    futures = {name: _POOL.submit(check) for name, check in checks().items()}
    results: dict[str, str] = {}
    for name, future in futures.items():
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
            results[name] = "ok"
        except (concurrent.futures.TimeoutError, *_TIMEOUTS):
            results[name] = "timed out"
        except Exception as exc:
            results[name] = f"error: {type(exc).__name__}: {exc}"[:300]
    healthy = all(value == "ok" for value in results.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": results}, status=200 if healthy else 503
    )
