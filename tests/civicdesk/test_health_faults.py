"""``/healthz`` against engines that hang (accept connections, never answer) as well as missing ones: 503
within a second with the check named "timed out", and 200 again once the engine answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from tests.engines import postgres_socket_path, redis_socket_path
from tests.faults import TcpProxy

pytestmark = pytest.mark.django_db

PROBE_BOUND_SECONDS = 1.0


def probe(client: Client) -> tuple[int, dict[str, str], float]:
    started = time.monotonic()
    response = client.get("/healthz")
    return response.status_code, response.json()["checks"], time.monotonic() - started


@pytest.fixture
def redis_proxy(settings: Any) -> Iterator[TcpProxy]:
    db = settings.REDIS_URL.rsplit("db=", 1)[1]
    with TcpProxy(upstream=redis_socket_path()) as proxy:
        settings.REDIS_URL = f"redis://127.0.0.1:{proxy.port}/{db}"
        yield proxy


@pytest.fixture
def postgres_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[TcpProxy]:
    params = connection.get_connection_params()
    with TcpProxy(upstream=postgres_socket_path()) as proxy:
        through = {**params, "host": "127.0.0.1", "port": proxy.port}
        monkeypatch.setattr(connection, "get_connection_params", lambda: through)
        yield proxy


def test_healthz_is_503_timed_out_within_a_second_while_redis_hangs_and_200_after(
    client: Client, redis_proxy: TcpProxy
) -> None:
    assert probe(client)[:2] == (200, {"database": "ok", "redis": "ok"})
    redis_proxy.hang()
    status, checks, seconds = probe(client)
    assert (status, checks) == (503, {"database": "ok", "redis": "timed out"})
    assert seconds < PROBE_BOUND_SECONDS, f"{seconds:.2f}s"
    redis_proxy.resume()
    assert probe(client)[:2] == (200, {"database": "ok", "redis": "ok"})


def test_healthz_is_503_timed_out_within_a_second_while_postgres_hangs_and_200_after(
    client: Client, postgres_proxy: TcpProxy
) -> None:
    assert probe(client)[:2] == (200, {"database": "ok", "redis": "ok"})
    assert postgres_proxy.connections == 1  # the probe's connection went through the proxy
    postgres_proxy.hang()
    status, checks, seconds = probe(client)
    assert (status, checks) == (503, {"database": "timed out", "redis": "ok"})
    assert seconds < PROBE_BOUND_SECONDS, f"{seconds:.2f}s"
    postgres_proxy.resume()
    assert probe(client)[:2] == (200, {"database": "ok", "redis": "ok"})
