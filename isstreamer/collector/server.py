"""The collector: a threading HTTP server on the SQLite store, plus the retention timer."""

from __future__ import annotations

import collections
import ipaddress
import logging
import os
import socket
import socketserver
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Deque, Iterable, List, Optional, Set, Tuple, Union

from .handler import Handler
from .keys import key_file_path, load_or_create_key
from .store import Store
from .wire import Limits, overload_response

log = logging.getLogger("isstreamer.collector")

RETENTION_INTERVAL_S = 3600.0
DRAIN_TIMEOUT_S = 5.0
# A refused connection stays open this long after its 503, so the client reads the answer
# before a close with unread request bytes turns into a reset; at most LINGER_MAX of them.
LINGER_S = 1.0
LINGER_MAX = 256
OVERLOAD_LOG_INTERVAL_S = 60.0


class CollectorHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its store and keys and can drain its connections."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        host: str,
        port: int,
        store: Store,
        access_keys: List[str],
        limits: Optional[Limits] = None,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), Handler)
        self.store = store
        self.access_keys = access_keys
        self.limits = limits or Limits()
        self._overload = overload_response(self.limits)
        self._active = 0  # connections with a handler thread
        self._lingering: Deque[Tuple[float, socket.socket]] = collections.deque()
        self._overload_logged = -OVERLOAD_LOG_INTERVAL_S
        # Reads are open only when nobody but this machine can connect.
        self.reads_open = _is_loopback(str(self.server_address[0]))
        self._state = threading.Condition()
        self._inflight = 0
        self._closing = False
        self._connections: Set[socket.socket] = set()

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name, which can hang for seconds offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread for the connection, or 503 at once when max_connections are busy."""
        with self._state:
            busy = self._active >= self.limits.max_connections
            if not busy:
                self._active += 1
        if busy:
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except RuntimeError:  # "can't start new thread": the system's own limit
            with self._state:
                self._active -= 1
            self._refuse(request)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._state:
                self._active -= 1

    def _refuse(self, request: socket.socket) -> None:
        # On the accepting thread, so it must never block: a new connection's send buffer
        # is empty and takes the small answer in one non-blocking send.
        now = time.monotonic()
        if now - self._overload_logged >= OVERLOAD_LOG_INTERVAL_S:
            self._overload_logged = now
            log.warning(
                "%d connections busy (max_connections): answering 503 to new ones",
                self.limits.max_connections,
            )
        try:
            request.setblocking(False)
            request.send(self._overload)
            request.shutdown(socket.SHUT_WR)
            while request.recv(65536):  # what the client sent already, so the close is clean
                pass
        except OSError:  # BlockingIOError once nothing more has arrived
            pass
        self._lingering.append((now + LINGER_S, request))
        self._close_lingering(now)

    def _close_lingering(self, now: float) -> None:
        lingering = self._lingering
        while lingering and (lingering[0][0] <= now or len(lingering) > LINGER_MAX):
            lingering.popleft()[1].close()

    def service_actions(self) -> None:
        # Called by serve_forever between accepts (at least every poll interval).
        self._close_lingering(time.monotonic())

    def server_close(self) -> None:
        super().server_close()
        self._close_lingering(float("inf"))

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr for anything a handler raises; a client
        # that vanished is one debug line, anything else one error line with the cause.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            log.debug("client %s: %s", client_address[0], type(exc).__name__)
        else:
            log.error(
                "error serving %s: %s: %s",
                client_address[0],
                type(exc).__name__,
                exc,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )

    def track(self, conn: socket.socket) -> None:
        with self._state:
            self._connections.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._state:
            self._connections.discard(conn)

    def begin_request(self) -> bool:
        """Count a request in; False once the server is draining."""
        with self._state:
            if self._closing:
                return False
            self._inflight += 1
            return True

    def end_request(self) -> None:
        with self._state:
            self._inflight -= 1
            self._state.notify_all()

    def drain(self, timeout: float) -> None:
        """Refuse new requests, let running ones finish, then close idle keep-alive connections."""
        with self._state:
            self._closing = True
            self._state.wait_for(lambda: self._inflight == 0, timeout)
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes the handler thread blocked reading
            except OSError:
                pass


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _poke(server: CollectorHTTPServer) -> None:
    host, port = str(server.server_address[0]), int(server.server_address[1])
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    try:
        socket.create_connection((host, port), timeout=0.2).close()
    except OSError:
        pass


class Collector:
    """An Initial State-compatible collector serving from a daemon thread."""

    def __init__(
        self,
        db_path: Union[str, "os.PathLike[str]"],
        host: str = "127.0.0.1",
        port: int = 8080,
        access_keys: Optional[Iterable[str]] = None,
        retention_days: Optional[float] = None,
        limits: Optional[Limits] = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.limits = limits or Limits()
        self.host = host
        self.port = port
        self.retention_days = retention_days
        self.retention_interval_s = RETENTION_INTERVAL_S
        self.access_keys: List[str] = [k for k in (access_keys or ()) if k]
        self.generated_key: Optional[str] = None  # set when this start created the key file
        self.key_file: Optional[Path] = None
        if not self.access_keys:
            self.key_file = key_file_path(self.db_path)
            key, created = load_or_create_key(self.key_file)
            self.access_keys = [key]
            self.generated_key = key if created else None
        self._server: Optional[CollectorHTTPServer] = None
        self._store: Optional[Store] = None
        self._threads: List[threading.Thread] = []
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        """Base URL of the API and dashboard, with the real port once started."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def reads_open(self) -> bool:
        """True when reads need no key (bound to a loopback address)."""
        return self._server.reads_open if self._server else _is_loopback(self.host)

    def start(self) -> "Collector":
        """Open the store, bind, serve in a daemon thread; OSError if the port is taken."""
        if self._server is not None:
            return self
        store = Store(self.db_path)
        try:
            server = CollectorHTTPServer(self.host, self.port, store, self.access_keys, self.limits)
        except BaseException:
            store.close()
            raise
        self._store, self._server = store, server
        self.port = server.server_address[1]
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=server.serve_forever, name="isstreamer-collector", daemon=True)
        ]
        if self.retention_days:
            self._threads.append(
                threading.Thread(
                    target=self._retention_loop, name="isstreamer-retention", daemon=True
                )
            )
        for thread in self._threads:
            thread.start()
        log.info("collector serving %s from %s", self.url, self.db_path)
        return self

    def purge(self) -> int:
        """Apply the retention setting now; returns the number of events deleted."""
        if self._store is None or not self.retention_days:
            return 0
        deleted = self._store.purge(
            time.time() - self.retention_days * 86400, self._stopping.is_set
        )
        if deleted:
            log.info(
                "retention: deleted %d events older than %g days", deleted, self.retention_days
            )
        return deleted

    def _retention_loop(self) -> None:
        # At start, then every interval; Event.wait sleeps without polling and wakes at stop().
        while not self._stopping.is_set():
            try:
                self.purge()
            except Exception:
                log.exception("retention run failed")
            self._stopping.wait(self.retention_interval_s)

    def stop(self, timeout: float = DRAIN_TIMEOUT_S) -> None:
        """Stop accepting, finish running requests (up to ``timeout``), close the store."""
        server, store = self._server, self._store
        if server is None or store is None:
            return
        self._stopping.set()
        # serve_forever notices shutdown() only between select() calls (every 0.5 s); a
        # connection of our own wakes it at once, so stop() and SIGTERM take milliseconds.
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        while stopper.is_alive():
            _poke(server)
            stopper.join(0.05)
        server.server_close()
        server.drain(timeout)
        for thread in self._threads:
            thread.join(timeout)
        store.close()
        self._server = self._store = None
        log.info("collector stopped")

    def __enter__(self) -> "Collector":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
