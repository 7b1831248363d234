"""``/healthz``: 200 when PostgreSQL and Redis both answer, else 503 with the reason, within a second."""

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

# Checks run in a small pool so a hung engine costs the probe at most the deadline, not a thread per call.
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="healthz")


def _database_params() -> dict[str, object]:
    # Read in the request thread: Django's connection object is thread-local.
    params = dict(connection.get_connection_params())
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    return params


def _check_database(params: dict[str, Any]) -> None:
    # A dedicated connection, not Django's: a dead server must not poison the request's connection.
    with psycopg.connect(**params, connect_timeout=2, autocommit=True) as conn:
        conn.execute("SET statement_timeout = 800")
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
    deadline = time.monotonic() + 0.9
    futures = {name: _POOL.submit(check) for name, check in checks().items()}
    results: dict[str, str] = {}
    for name, future in futures.items():
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
            results[name] = "ok"
        except concurrent.futures.TimeoutError:
            results[name] = "timed out"
        except Exception as exc:
            results[name] = f"error: {type(exc).__name__}: {exc}"[:300]
    healthy = all(value == "ok" for value in results.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": results}, status=200 if healthy else 503
    )
