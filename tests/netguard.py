"""A guard for the rule "a request opens no network connection except to PostgreSQL and Redis".

While active, every ``connect``/``connect_ex`` of a Python socket and every name lookup is checked
against the addresses of the database and of Redis (the cache and the Celery broker, from the settings):
those go through and are recorded in ``allowed``; any other is refused with ``OSError`` and recorded in
``refused``. The record matters, not the exception: product code that swallows errors (the nudge does) would
hide a refused connect from the response, never from ``refused``.

libpq opens PostgreSQL's socket in C, so it never reaches this guard; Redis (redis-py, Kombu) does.
"""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connection

Address = str | tuple[str, int]


class ForbiddenConnection(OSError):
    pass


def _url_address(url: str) -> Address:
    parts = urlsplit(url)
    if parts.scheme in {"unix", "redis+socket", "socket"}:
        return parts.path
    return (parts.hostname or "localhost", parts.port or 6379)


def engine_addresses() -> set[Address]:
    """Where the database and Redis listen, as ``connect`` is given them."""
    addresses = {
        _url_address(settings.CACHES["default"]["LOCATION"]),
        _url_address(settings.CELERY_BROKER_URL),
    }
    db = connection.settings_dict
    port = int(db.get("PORT") or 5432)
    host = str(db["HOST"] or "localhost")
    addresses.add(f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port))
    return addresses


def _normalise(address: Any) -> Address:
    if isinstance(address, bytes):
        return address.decode()
    if isinstance(address, tuple):
        return (str(address[0]), int(address[1]))
    return str(address)


class NetworkGuard:
    def __init__(self, *, allowed: set[Address]) -> None:
        self._monkeypatch = pytest.MonkeyPatch()
        self._allowed = allowed
        self._hosts = {a[0] for a in allowed if isinstance(a, tuple)}
        self.allowed: list[Address] = []
        self.refused: list[Address] = []

    def _check(self, address: Any) -> None:
        normalised = _normalise(address)
        if normalised in self._allowed:
            self.allowed.append(normalised)
            return
        self.refused.append(normalised)
        raise ForbiddenConnection(
            f"a request connected to {normalised!r}, which is neither PostgreSQL nor Redis"
        )

    def __enter__(self) -> NetworkGuard:
        real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
        real_getaddrinfo = socket.getaddrinfo
        guard = self

        def connect(sock: socket.socket, address: Any) -> None:
            guard._check(address)
            real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            guard._check(address)
            return real_connect_ex(sock, address)

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host not in guard._hosts:  # a name lookup is network I/O too
                guard.refused.append((str(host), int(port or 0)))
                raise socket.gaierror(f"a request looked up {host!r}, which is neither PostgreSQL nor Redis")
            return real_getaddrinfo(host, port, *args, **kwargs)

        self._monkeypatch.setattr(socket.socket, "connect", connect)
        self._monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
        self._monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._monkeypatch.undo()
