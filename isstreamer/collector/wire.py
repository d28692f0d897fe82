"""The collector's defences on the wire: per-request deadlines, strict framing, gzip members.

A thread per connection is only safe when no client can hold one for long: every phase of a
request (waiting for it, its request line and headers, its body, the answer) has a deadline
on the monotonic clock, however slowly the client drips its bytes.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import re
import socket
import socketserver
import threading
import time
import zlib
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from ..errors import IsStreamerError
from .routes import HTTPError

log = logging.getLogger("isstreamer.collector")

MAX_BODY_BYTES = 1024 * 1024
# A body over the limit is still read and thrown away up to this size, so the client sees the
# 413 on a live connection (and splits the batch) instead of a reset while it is still sending.
DISCARD_LIMIT_BYTES = 32 * 1024 * 1024
_DIGITS = re.compile(r"[0-9]{1,15}")  # a length of up to 999 TB; anything else is not a length


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one client may cost the collector, in seconds on the monotonic clock.

    The head of a request must arrive within header_timeout_s of the connection, or of the
    first byte of a later request on a keep-alive connection.
    """

    max_connections: int = 64  # past it, new connections get 503 + Retry-After at once
    header_timeout_s: float = 10.0  # the request line and headers
    body_timeout_s: float = 60.0  # the body, from the end of the headers (1 MB at 17 KB/s)
    idle_timeout_s: float = 60.0  # a keep-alive connection waiting for its next request
    response_timeout_s: float = 30.0  # writing the answer to a client that does not read
    retry_after_s: int = 1  # told to clients refused for the connection limit


class FramingError(IsStreamerError, ValueError):
    """A request whose body length cannot be trusted: answered 400, connection closed."""


class DeadlineReader(io.RawIOBase):
    """Socket reads that all end at one ``deadline`` (monotonic seconds), not per read.

    A per-read timeout lets a client that sends a byte a minute keep a thread forever; here
    each read waits only for what is left of the current phase's deadline.
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock
        self.deadline = time.monotonic()

    def start(self, seconds: float) -> None:
        """Begin a phase that must be over within ``seconds``."""
        self.deadline = time.monotonic() + seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("request deadline passed")  # TimeoutError from Python 3.10
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


def content_length(headers: Message) -> int:
    """The body length a request declares, 0 without one; FramingError unless it is exact.

    ``int()`` would take "-1", "+5", " 1_000" and two headers would be two guesses: each is a
    way to read the next request out of this one's body, so all are refused.
    """
    values = headers.get_all("Content-Length") or []
    if len(values) > 1:
        raise FramingError("more than one Content-Length header")
    if headers.get("Transfer-Encoding") is not None and values:
        raise FramingError("both Transfer-Encoding and Content-Length")
    if not values:
        return 0
    text = values[0].strip()
    if not _DIGITS.fullmatch(text):
        raise FramingError("Content-Length must be a number of bytes")
    return int(text)


class TooLarge(IsStreamerError, ValueError):
    """A decompressed body over the limit."""


def gunzip(body: bytes, limit: int) -> bytes:
    """Every member of a gzip body (gzip files may be concatenated), at most ``limit`` bytes.

    ValueError for bytes that are not gzip or a truncated member, TooLarge past ``limit``.
    """
    parts: list[bytes] = []
    total = 0
    data = body
    while data:
        inflater = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer, one member
        try:
            part = inflater.decompress(data, limit + 1 - total)  # bounded: no zip bomb
        except zlib.error:
            raise ValueError("body is not valid gzip") from None
        total += len(part)
        if total > limit or inflater.unconsumed_tail:
            raise TooLarge(f"request body larger than {limit} bytes once decompressed")
        if not inflater.eof:
            raise ValueError("gzip body is truncated")
        parts.append(part)
        data = inflater.unused_data  # the next member, if any
    return b"".join(parts)


class GuardedServer(ThreadingHTTPServer):
    """The server side of the guard: the limits, and the bookkeeping that lets drain() finish
    running requests and then close idle keep-alive connections."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, limits: Limits) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)
        self.limits = limits
        self._state = threading.Condition()
        self._inflight = 0
        self._closing = False
        self._connections: set[socket.socket] = set()

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name, which can hang for seconds offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

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


class GuardedHandler(BaseHTTPRequestHandler):
    """http.server's handler with deadlines for every phase of a request, strict body framing
    and one debug line (never a traceback, never the request line) for client trouble."""

    timeout = None  # reads have deadlines per phase (DeadlineReader); writes their own timeout
    server: GuardedServer

    def setup(self) -> None:
        super().setup()
        # Head and body go out in two writes: with Nagle's algorithm the body would wait for
        # the client's delayed ACK of the head, 40 ms on Linux, on every answer with a body.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # not TCP (a Unix socket in a test): nothing to turn off
            pass
        self._reader = DeadlineReader(self.connection)
        self._buffered = io.BufferedReader(self._reader, 65536)
        self.rfile = self._buffered
        self._reader.start(self.server.limits.header_timeout_s)  # the first request's head
        self._waiting = False  # True between requests of a keep-alive connection
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        # The request line can carry ?accessKey=, so only the path (no query) is ever logged;
        # and before the request line is parsed there is neither a command nor a path.
        path = urlsplit(getattr(self, "path", "") or "").path
        client = self.client_address[0]
        command = getattr(self, "command", None) or "-"
        log.debug("client %s: %s %s %s", client, command, path or "-", code)

    def log_error(self, format: str, *args: Any) -> None:
        # http.server's error messages quote the request line (and so ?accessKey=): one line
        # with the client and the status or the trouble, never the request itself.
        what = args[0] if args and isinstance(args[0], int) else format.split(":")[0]
        log.debug("client %s: %s", self.client_address[0], what)

    def send_error(self, code: int, message: str | None = None, explain: Any = None) -> None:
        """http.server's own refusals (bad request line, headers too long...) as the API's
        JSON answers, with a status line, and without quoting the request back."""
        self.close_connection = True  # one log line: send_response logs the status
        if self.request_version == "HTTP/0.9":  # set by a request line that failed to parse
            self.request_version = self.protocol_version
        reason = self.responses.get(code, ("error",))[0]
        body = (f'{{"message":"{reason}"}}').encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_one_request(self) -> None:
        """One request, each phase within its deadline; client trouble is one debug line."""
        limits = self.server.limits
        self.request_version = self.protocol_version  # for an answer before the line is parsed
        try:
            if self._waiting:  # keep-alive: wait idle_timeout_s for the next request to begin
                self._reader.start(limits.idle_timeout_s)
                if not self._buffered.peek(1):
                    self.close_connection = True
                    return
                self._reader.start(limits.header_timeout_s)
            self._waiting = True
            super().handle_one_request()
        except socket.timeout:  # TimeoutError from Python 3.10; http.server catches it first
            self.close_connection = True
        except OSError as exc:  # a reset or a broken pipe: the client went away
            log.debug("client %s: %s", self.client_address[0], type(exc).__name__)
            self.close_connection = True

    def send_response(self, code: int, message: str | None = None) -> None:
        # The answer gets its own deadline; the socket timeout was left at what remained of
        # the last read phase.
        self.connection.settimeout(self.server.limits.response_timeout_s)
        super().send_response(code, message)

    def _body_length(self) -> int:
        try:
            length = content_length(self.headers)
        except FramingError as exc:
            self.close_connection = True  # where this body ends is unknown: so is the next request
            raise HTTPError(400, str(exc)) from None
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            self.close_connection = True
            raise HTTPError(411, "send a Content-Length; chunked bodies are not accepted")
        return length

    def _read_body(self) -> bytes:
        length = self._body_length()
        if length > MAX_BODY_BYTES:
            self._discard(length)
            raise HTTPError(
                413, f"request body larger than {MAX_BODY_BYTES} bytes; send fewer events"
            )
        self._reader.start(self.server.limits.body_timeout_s)
        try:
            body = self.rfile.read(length) if length > 0 else b""
        except socket.timeout:
            self.close_connection = True
            seconds = self.server.limits.body_timeout_s
            raise HTTPError(408, f"request body not received within {seconds:g} s") from None
        if len(body) < length:
            raise ConnectionError("client closed the connection mid-body")
        if self.headers.get("Content-Encoding", "").lower() in ("gzip", "x-gzip"):
            try:
                body = gunzip(body, MAX_BODY_BYTES)
            except TooLarge as exc:
                raise HTTPError(413, str(exc)) from None
            except ValueError as exc:
                raise HTTPError(400, str(exc)) from None
        return body

    def _discard_body(self) -> None:
        try:
            length = self._body_length()
        except HTTPError:  # the answer is about something else; just do not read on
            length = DISCARD_LIMIT_BYTES + 1
        self._discard(length)

    def _discard(self, length: int) -> None:
        if length > DISCARD_LIMIT_BYTES or self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return
        self._reader.start(self.server.limits.body_timeout_s)
        try:
            while length > 0:
                chunk = self.rfile.read(min(length, 65536))
                if not chunk:
                    self.close_connection = True
                    return
                length -= len(chunk)
        except socket.timeout:
            self.close_connection = True
