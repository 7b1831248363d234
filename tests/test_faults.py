"""The fault-injection proxy itself: it forwards, hangs without answering, refuses, and comes back."""

from __future__ import annotations

import socket
import threading

import pytest

from tests.faults import TcpProxy


@pytest.fixture
def echo_server() -> tuple[str, int]:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(
                target=lambda c=conn: [c.sendall(d) for d in iter(lambda: c.recv(1024), b"")], daemon=True
            ).start()

    threading.Thread(target=serve, daemon=True).start()
    host, port = listener.getsockname()
    return host, port


def _ask(port: int, payload: bytes, timeout: float = 1.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        return sock.recv(1024)


def test_the_proxy_forwards_hangs_refuses_and_comes_back(echo_server: tuple[str, int]) -> None:
    with TcpProxy(upstream=echo_server) as proxy:
        assert _ask(proxy.port, b"ping") == b"ping"
        proxy.hang()
        with pytest.raises(TimeoutError):  # connects (the kernel accepts), then never hears back
            _ask(proxy.port, b"ping", timeout=0.3)
        proxy.resume()
        assert _ask(proxy.port, b"again") == b"again"
        proxy.refuse()
        with pytest.raises(ConnectionRefusedError):
            _ask(proxy.port, b"ping")
        proxy.accept()
        assert _ask(proxy.port, b"back") == b"back"
