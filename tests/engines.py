"""The tests' engines as a fault test needs them: their socket paths, to put a ``tests.faults.TcpProxy`` in
front, and a live WSGI server whose database connection goes through such a proxy."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection, connections

from messages.twilio.signatures import sign


def redis_socket_path() -> Path:
    """The embedded Redis's unix socket, from the tests' REDIS_URL (``unix:///…/redis.sock?db=1``)."""
    parts = urlsplit(settings.REDIS_URL)
    assert parts.scheme == "unix", f"a proxy goes in front of a unix-socket Redis, not {settings.REDIS_URL}"
    return Path(parts.path)


def postgres_socket_path() -> Path:
    """The embedded PostgreSQL's unix socket (``<socket dir>/.s.PGSQL.<port>``)."""
    db = settings.DATABASES["default"]
    assert str(db["HOST"]).startswith("/"), f"a proxy goes in front of a unix-socket PostgreSQL, not {db}"
    return Path(db["HOST"]) / f".s.PGSQL.{db.get('PORT') or 5432}"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's parameter name
        pass


@contextmanager
def live_server(*, database_port: int) -> Iterator[int]:
    """Django's real WSGI handler on 127.0.0.1 (its port), one request at a time in one thread, like a
    gunicorn sync worker: request_started and request_finished fire, so CONN_MAX_AGE and
    CONN_HEALTH_CHECKS work as in production (the test client switches both off). Its database
    connection, and only its, goes to 127.0.0.1:``database_port``, persistent as in production settings.
    """
    server: WSGIServer = make_server("127.0.0.1", 0, WSGIHandler(), handler_class=_Quiet)

    def serve() -> None:
        try:
            connections["default"].settings_dict = {
                **connection.settings_dict,
                "HOST": "127.0.0.1",
                "PORT": str(database_port),
                "CONN_MAX_AGE": 60,
                "CONN_HEALTH_CHECKS": True,
            }
            server.serve_forever(poll_interval=0.05)
        finally:
            connections.close_all()  # this thread's connections; the test database is dropped later

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def post_signed_http(port: int, path: str, params: dict[str, str], *, timeout: float = 10) -> Any:
    """POST a form signed as Twilio signs it, over HTTP; the http.client response, body read."""
    items = list(params.items())
    signature = sign(settings.PUBLIC_BASE_URL + path, items, settings.TWILIO_AUTH_TOKEN)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(
            "POST",
            path,
            body=urlencode(items),
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
        )
        response = conn.getresponse()
        response.read()
        return response
    finally:
        conn.close()
