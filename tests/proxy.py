"""A TCP proxy in front of the test PostgreSQL, to cut and restore the
database's reachability without touching the server itself."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from urllib.parse import parse_qs, urlsplit


def upstream_address(url: str) -> tuple[int, object]:
    """(family, address) of the server a libpq URL names (TCP or unix socket)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "localhost"])[0]
    port = int(query.get("port", [parts.port or 5432])[0])
    if host.startswith("/"):
        return socket.AF_UNIX, f"{host}/.s.PGSQL.{port}"
    return socket.AF_INET, (host, port)


class TcpProxy:
    """Listens on 127.0.0.1:<port> and pipes each connection to the upstream.

    `cut()` closes the listener and every piped connection (the database seems
    gone); `restore()` listens again on the same port.
    """

    def __init__(self, upstream_url: str) -> None:
        self.family, self.address = upstream_address(upstream_url)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def url(self, database_url: str) -> str:
        """`database_url` rerouted through this proxy."""
        parts = urlsplit(database_url)
        user = parts.username or "postgres"
        # Keep the password (a testcontainers server asks for one), as written.
        userinfo = parts.netloc.rpartition("@")[0] if parts.password else user
        return f"postgresql://{userinfo}@127.0.0.1:{self.port}{parts.path}"

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        self.cut()
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.socket(self.family, socket.SOCK_STREAM)
                server.connect(self.address)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, server))
            thread = threading.Thread(target=self._pipe, args=(client, server), daemon=True)
            thread.start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        try:
            selector.register(a, selectors.EVENT_READ, b)
            selector.register(b, selectors.EVENT_READ, a)
            while True:
                for key, _ in selector.select(timeout=1):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()
