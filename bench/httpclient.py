"""A lean HTTP/1.1 client for the load generators: keep-alive connections over asyncio protocols.

Why not aiohttp: the load generator shares the two cores with the server it measures, so every millisecond
it spends is taken from the system under test. aiohttp costs 0.3-0.7 ms of CPU per request here (measured by
the benchmarks, docs/performance.md); this client, which only sends prepared bytes and finds the end of a
``Content-Length`` or chunked response, costs a fraction of that. It speaks just enough HTTP/1.1 for our own
server on loopback: no TLS, no redirects, no compression, no proxies, no request pipelining.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from urllib.parse import urlsplit


class HttpError(Exception):
    """The connection failed or closed before a whole response arrived, or the response was unparsable."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, pool: HttpPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.open = True
        self.keep_alive = True
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._fail(HttpError(f"connection closed: {exc}" if exc else "connection closed"))

    def send(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        assert self.waiter is None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None:
            if self.buffer:  # bytes nobody asked for: this connection is out of step
                self.close()
            return
        try:
            parsed = self._parse()
        except (ValueError, IndexError) as exc:
            self._fail(HttpError(f"unparsable response: {exc}"))
            self.close()
            return
        if parsed is not None:
            waiter, self.waiter = self.waiter, None
            if not waiter.done():
                waiter.set_result(parsed)

    def _parse(self) -> tuple[int, bytes] | None:
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buffer[:end]).lower()
        status = int(head[9:12])
        start = end + 4
        chunked = b"\r\ntransfer-encoding: chunked" in head
        length_at = head.find(b"\r\ncontent-length:")
        if chunked:
            body, consumed = self._dechunk(start)
            if body is None:
                return None
        elif length_at >= 0:
            line_end = head.find(b"\r\n", length_at + 2)
            length = int(head[length_at + 17 : line_end if line_end >= 0 else len(head)])
            if len(buffer) < start + length:
                return None
            body, consumed = bytes(buffer[start : start + length]), start + length
        elif status in (204, 304) or 100 <= status < 200:
            body, consumed = b"", start
        else:
            raise ValueError("a response with neither Content-Length nor chunked encoding")
        del buffer[:consumed]
        self.keep_alive = b"\r\nconnection: close" not in head and head.startswith(b"http/1.1")
        return status, body

    def _dechunk(self, start: int) -> tuple[bytes | None, int]:
        buffer, position = self.buffer, start
        parts: list[bytes] = []
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return None, 0
            size = int(bytes(buffer[position:line_end]).split(b";", 1)[0], 16)
            chunk_start = line_end + 2
            if size == 0:
                trailer_end = buffer.find(b"\r\n\r\n", line_end)
                if trailer_end < 0:
                    return None, 0
                return b"".join(parts), trailer_end + 4
            if len(buffer) < chunk_start + size + 2:
                return None, 0
            parts.append(bytes(buffer[chunk_start : chunk_start + size]))
            position = chunk_start + size + 2

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()


class HttpPool:
    """Up to ``limit`` keep-alive connections to one origin; a request waits (FIFO) for a free one.

    A connection idle for ``idle_timeout`` seconds is closed rather than reused: the server closes idle
    connections too (gunicorn's ``--keep-alive``, 5 s in the benchmarks), and a request sent just as it does
    is reset. Keep ``idle_timeout`` well below the server's keep-alive.
    """

    def __init__(self, base_url: str, *, limit: int, timeout: float, idle_timeout: float = 2.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"HttpPool speaks plain http to one host, not {base_url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.netloc = parts.netloc
        self.limit, self.timeout, self.idle_timeout = limit, timeout, idle_timeout
        self.idle: deque[_Connection] = deque()
        self.waiting: deque[asyncio.Future[_Connection | None]] = deque()
        self.count = 0

    def encode(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> bytes:
        """The request's bytes; prepare them before the clock starts when the request is known ahead."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.netloc}", f"Content-Length: {len(body)}"]
        lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def send(self, data: bytes) -> tuple[int, bytes]:
        """Send one encoded request and return (status, body). Raises HttpError or TimeoutError."""
        async with asyncio.timeout(self.timeout):
            connection = await self._acquire()
            try:
                result = await connection.send(data)
            except BaseException:
                connection.close()
                self._release(connection)
                raise
        if not connection.keep_alive:
            connection.close()
        self._release(connection)
        return result

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        return await self.send(self.encode("POST", path, body, headers))

    async def _acquire(self) -> _Connection:
        now = time.monotonic()
        while self.idle:
            connection = self.idle.pop()  # the most recently used: warm, and the rest may expire unused
            if connection.open and now - connection.idle_since < self.idle_timeout:
                return connection
            connection.close()
            self.count -= 1
        if self.count < self.limit:
            self.count += 1
            try:
                loop = asyncio.get_running_loop()
                _, protocol = await loop.create_connection(lambda: _Connection(self), self.host, self.port)
            except BaseException:
                self.count -= 1
                self._wake_one()
                raise
            return protocol
        waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
        self.waiting.append(waiter)
        try:
            handed_over = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():  # handed over just as we gave up: pass it on
                handed = waiter.result()
                if handed is not None:
                    self._release(handed)
                else:
                    self._wake_one()
            raise
        return handed_over if handed_over is not None else await self._acquire()

    def _release(self, connection: _Connection) -> None:
        if not connection.open:
            self.count -= 1
            self._wake_one()
            return
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        connection.idle_since = time.monotonic()
        self.idle.append(connection)

    def _wake_one(self) -> None:
        """A slot freed up: let the first waiter open a connection of its own."""
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()
