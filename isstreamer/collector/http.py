"""The collector's HTTP plumbing: connections in, Requests to the routes, Responses out.

``CollectorHTTPServer`` gives each connection a thread up to ``Limits.max_connections`` and
answers 503 beyond; ``Handler`` turns each request of a connection into a ``routes.Request``
and writes the ``routes.Response``. Deadlines and framing are ``wire``'s; what to answer is
``routes``'s.
"""

from __future__ import annotations

import collections
import logging
import socket
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from .._version import __version__
from .auth import loopback_address
from .routes import SERVICE, Request, Response, Routes
from .store import Store
from .wire import GuardedHandler, GuardedServer, Limits

log = logging.getLogger("isstreamer.collector")

# A refused connection stays open this long after its 503, so the client reads the answer
# before a close with unread request bytes turns into a reset; at most LINGER_MAX of them.
LINGER_S = 1.0
LINGER_MAX = 256
OVERLOAD_LOG_INTERVAL_S = 60.0
_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
    ),
)
_SHUTTING_DOWN = Response.json(503, {"message": "shutting down"})
_INTERNAL_ERROR = Response.json(500, {"message": "internal error"})


class Handler(GuardedHandler):
    """One connection; HTTP/1.1 keep-alive, every response has a Content-Length."""

    protocol_version = "HTTP/1.1"
    server_version = f"{SERVICE}/{__version__}"
    sys_version = ""
    server: CollectorHTTPServer

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        if not self.server.begin_request():
            self.close_connection = True
            self._send(_SHUTTING_DOWN)
            return
        try:
            request = Request(self.command, self.path, self.headers, self._read_body)
            response = self.server.routes.handle(request)
            if not request.body_read:  # the client may still be sending it: read it first
                self._discard_body()
            self._send(response)
        except (ConnectionError, TimeoutError, socket.timeout):  # socket.timeout: Python 3.9
            self.close_connection = True
        except Exception:
            log.exception("error handling %s %s", self.command, urlsplit(self.path).path)
            self.close_connection = True
            self._send(_INTERNAL_ERROR)
        finally:
            self.server.end_request()

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in (*_SECURITY_HEADERS, *response.headers):
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if response.body:
            self.wfile.write(response.body)


class CollectorHTTPServer(GuardedServer):
    """The threading HTTP server of a collector: its routes, and a cap on connections."""

    request_queue_size = 128

    def __init__(
        self, host: str, port: int, store: Store, access_keys: list[str], limits: Limits
    ) -> None:
        super().__init__((host, port), Handler, limits)
        # Reads are open only when nobody but this machine can connect.
        self.reads_open = loopback_address(str(self.server_address[0]))
        self.routes = Routes(store, access_keys, self.reads_open)
        self._overload = overload_response(limits)
        self._active = 0  # connections with a handler thread
        self._lingering: collections.deque[tuple[float, socket.socket]] = collections.deque()
        self._overload_logged = -OVERLOAD_LOG_INTERVAL_S

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


def overload_response(limits: Limits) -> bytes:
    """The whole 503 answer sent to a connection past the limit, ready for one send()."""
    body = (
        f'{{"message":"too many connections ({limits.max_connections:d});'
        f' retry after {limits.retry_after_s:d} s"}}'
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        f"Retry-After: {limits.retry_after_s}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body
