"""Fault injection for the engines: a TCP proxy in front of a real PostgreSQL or Redis that can be made to
hang (accept connections and never answer) or to go away (refuse connections), and brought back.

A missing unix socket fails at once; a server that hangs is what a network partition, a stuck failover or an
overloaded engine look like, and only a proxy of this kind makes one on purpose. Use it as::

    with TcpProxy(upstream=redis_socket_path) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/1"
        proxy.hang()     # connected clients stall, new ones connect and stall
        proxy.resume()   # traffic flows again (stalled bytes are delivered)
        proxy.refuse()   # every connection closed, new ones refused
        proxy.accept()   # listening again on the same port
"""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from types import TracebackType

_CHUNK = 65536


class TcpProxy:
    def __init__(self, *, upstream: Path | str | tuple[str, int]) -> None:
        self.upstream = upstream
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.port = 0
        self.connections = 0  # accepted so far, for tests that assert a client really connected
        self._listen()

    # --- control ---------------------------------------------------------------------------------------
    def hang(self) -> None:
        """Keep every connection open and forward nothing, either way; accept new ones and stall them too."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def refuse(self) -> None:
        """Close the listener and every connection: clients see resets, then connection refused."""
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept(); close alone does not
                self._listener.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None
        with self._lock:
            open_sockets, self._sockets = list(self._sockets), set()
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def accept(self) -> None:
        """Listen again, on the same port."""
        self._flowing.set()
        if self._listener is None:
            self._listen()

    def close(self) -> None:
        self._flowing.set()
        self.refuse()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- plumbing --------------------------------------------------------------------------------------
    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(256)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        if isinstance(self.upstream, tuple):
            return socket.create_connection(self.upstream, timeout=5)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(str(self.upstream))
        return sock

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by refuse()
            self.connections += 1
            self._track(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._flowing.wait()  # a connection made while hung stalls before it reaches the server
        try:
            server = self._connect_upstream()
        except OSError:
            with contextlib.suppress(OSError):
                client.close()
            return
        server.settimeout(None)
        self._track(server)
        threading.Thread(target=self._pump, args=(server, client), daemon=True).start()
        self._pump(client, server)

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(_CHUNK)
                if not data:
                    break
                self._flowing.wait()
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
