"""The load generators' HTTP client (bench/httpclient.py) against a real HTTP/1.1 server on loopback."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.httpclient import HttpPool


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    peers: set[int] = set()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Handler.peers.add(self.client_address[1])
        if self.path == "/slow":
            time.sleep(0.5)
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"<Response>", body, b"</Response>"):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        status = 403 if self.path == "/forbidden" else 200
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if self.path == "/close":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        if self.path == "/close":
            self.close_connection = True


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.peers = set()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_requests_share_at_most_limit_keep_alive_connections(server: str) -> None:
    async def run() -> list[tuple[int, bytes]]:
        pool = HttpPool(server, limit=2, timeout=5)
        try:
            return await asyncio.gather(*(pool.post("/echo", f"n={n}".encode(), {}) for n in range(20)))
        finally:
            pool.close()

    results = asyncio.run(run())
    assert results == [(200, f"n={n}".encode()) for n in range(20)]
    assert 1 <= len(_Handler.peers) <= 2


def test_chunked_bodies_status_codes_and_closed_connections(server: str) -> None:
    async def run() -> list[tuple[int, bytes]]:
        pool = HttpPool(server, limit=1, timeout=5)
        try:
            return [
                await pool.post("/chunked", b"hi", {"Content-Type": "text/plain"}),
                await pool.post("/forbidden", b"no", {}),
                await pool.post("/close", b"bye", {}),
                await pool.post("/echo", b"again", {}),  # a new connection after the server closed one
            ]
        finally:
            pool.close()

    assert asyncio.run(run()) == [
        (200, b"<Response>hi</Response>"),
        (403, b"no"),
        (200, b"bye"),
        (200, b"again"),
    ]
    assert len(_Handler.peers) == 2


def test_a_slow_response_times_out_and_frees_its_slot(server: str) -> None:
    async def run() -> tuple[bool, tuple[int, bytes]]:
        pool = HttpPool(server, limit=1, timeout=0.1)
        try:
            try:
                await pool.post("/slow", b"", {})
                timed_out = False
            except TimeoutError:
                timed_out = True
            pool.timeout = 5
            return timed_out, await pool.post("/echo", b"ok", {})
        finally:
            pool.close()

    assert asyncio.run(run()) == (True, (200, b"ok"))


def test_a_connection_idle_longer_than_idle_timeout_is_not_reused(server: str) -> None:
    async def run() -> None:
        pool = HttpPool(server, limit=1, timeout=5, idle_timeout=0.05)
        try:
            await pool.post("/echo", b"1", {})
            await asyncio.sleep(0.1)  # the server might be closing it right now: open a new one
            await pool.post("/echo", b"2", {})
        finally:
            pool.close()

    asyncio.run(run())
    assert len(_Handler.peers) == 2
