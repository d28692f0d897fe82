"""A real local HTTP server that speaks the Initial State events API and fails on command.

Tests point a sink at ``ApiServer().url`` and then inspect ``requests`` / ``events``, or queue
misbehaviour (``fail``, ``hang``, ``reset``, ``delay``, ``drip``, ``trickle``) for the next requests
to a path.
"""
from __future__ import annotations

import gzip
import itertools
import json
import selectors
import socket
import socketserver
import struct
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from isstreamer.model import bucket_key_problem

DEFAULT_ACCESS_KEY = "test-access-key"  # the key ApiServer() accepts unless told otherwise
EVENTS_PATH = "/api/events"
BUCKETS_PATH = "/api/buckets"
_CREDENTIAL_PARAMS = ("accessKey", "bucketKey")


@dataclass
class Request:
    """One request as the server saw it; ``body`` is the raw body (still gzipped if it was)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    json: Any  # parsed (gunzipped) JSON body, or None
    status: int  # what the server answered; 0 for hang/reset
    time: float  # time.monotonic() when received
    conn: int  # accept counter of the TCP connection: equal ids prove keep-alive reuse


@dataclass
class _Behaviour:
    kind: str  # "fail" | "hang" | "reset" | "delay" | "drip" | "trickle"
    times: int | None  # None: until clear()
    status: int = 0
    headers: dict[str, str] | None = None
    body: str | bytes | dict | None = None
    seconds: float = 0.0


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # so start() after stop() can rebind the port at once

    def __init__(self, api: ApiServer, address: tuple[str, int]) -> None:
        self.api = api
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can stall for seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.api.host, self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.api._cond:  # registered in the accept thread, so stop() never misses one
            self.api._conns[request] = next(self.api._conn_ids)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        with self.api._cond:
            self.api._conns.pop(request, None)
            self.api._cond.notify_all()  # stop() waits for the last one

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up, or stop() cutting connections, is routine; anything else is a bug.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real service
    disable_nagle_algorithm = True  # headers and body are two writes: no Nagle delay on the body
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no access log on stderr
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_GET

    def _handle(self) -> None:
        api = self.server.api
        received = time.monotonic()
        if isinstance(self.wfile, _Drip):  # the previous request on this connection dripped
            self.wfile = self.wfile.stream
        url = urlsplit(self.path)
        pairs = parse_qsl(url.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        behaviour, release = api._next_behaviour(url.path)
        if behaviour is not None and behaviour.kind == "trickle":
            raw = self._trickle_body(behaviour.seconds, release)
        else:
            raw = self._read_body()  # None: larger than max_body (read and discarded)
        payload, error = _decode(raw or b"", headers)
        req = Request(self.command, url.path, dict(pairs), headers, raw or b"", payload, 0,
                      received, api._conns.get(self.connection, 0))
        if behaviour is not None and behaviour.kind not in ("delay", "drip", "trickle"):
            return self._misbehave(req, behaviour, release)
        if behaviour is not None and behaviour.kind == "delay":
            release.wait(behaviour.seconds)  # clear()/stop() cut the delay short
        if behaviour is not None and behaviour.kind == "drip":
            # The usual answer, written one byte at a time (status line, headers and body).
            self.wfile = _Drip(self.wfile, behaviour.seconds, release)  # type: ignore[assignment]
        if raw is None:
            return self._answer(req, 413, {"message": f"body larger than {api.max_body} bytes"})
        routes = {EVENTS_PATH: ("GET", "POST"), BUCKETS_PATH: ("POST",)}
        if self.command not in routes.get(url.path, ()):
            return self._answer(req, 404, {"message": f"no route {self.command} {url.path}"})
        key = headers.get("x-is-accesskey") or req.query.get("accessKey")
        if api.access_keys is not None and key not in api.access_keys:
            return self._answer(req, 401, {"message": "invalid or missing access key"})
        if error:
            return self._answer(req, 400, {"message": error})
        if url.path == BUCKETS_PATH:
            return self._create_bucket(req, payload)
        bucket = headers.get("x-is-bucketkey") or req.query.get("bucketKey")
        events = [{"key": k, "value": v, "epoch": time.time()}
                  for k, v in pairs if k not in _CREDENTIAL_PARAMS]
        if payload is not None:
            items = payload if isinstance(payload, list) else [payload]
            if not all(isinstance(e, dict) and "key" in e and "value" in e for e in items):
                return self._answer(req, 400, {"message": "every event needs a key and a value"})
            events += items
        elif not events:
            return self._answer(req, 400, {"message": "no events"})
        problem = _bucket_problem(bucket)
        if problem:
            return self._answer(req, 400, {"message": problem})
        poison = api.poisoned(events)
        if poison is not None:
            return self._answer(req, poison, {"message": "cannot store this batch"})
        self._answer(req, 204, events=[dict(e, bucket=bucket) for e in events])

    def _create_bucket(self, req: Request, payload: Any) -> None:
        bucket = payload.get("bucketKey") if isinstance(payload, dict) else None
        problem = _bucket_problem(bucket)
        if problem:
            return self._answer(req, 400, {"message": problem})
        api = self.server.api
        with api._cond:
            created = bucket not in api.buckets
            api.buckets.setdefault(str(bucket), str(payload.get("bucketName") or bucket))
        self._answer(req, 201 if created else 204, {"bucketKey": bucket} if created else None)

    def _misbehave(self, req: Request, b: _Behaviour, release: threading.Event) -> None:
        if b.kind == "fail":
            body = b.body
            if body is None and b.status >= 400:
                body = {"message": self.responses.get(b.status, ("error",))[0]}
            return self._answer(req, b.status, body, b.headers)
        self.server.api._record(req, [])
        self.close_connection = True  # no answer, so this connection is done either way
        if b.kind == "hang":
            release.wait()  # clear() or stop(); then close without an answer
        else:  # reset: closing with SO_LINGER 0 sends RST, where shutdown() would send FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()  # holds a reference that would postpone the real close
            self.connection.close()

    def _read_body(self) -> bytes | None:
        # Chunked uploads are not supported: the sink (requests with a bytes body) never sends them.
        length = int(self.headers.get("Content-Length") or 0)
        if length <= self.server.api.max_body:
            return self.rfile.read(length)
        # Too large: still drain it, so the client finishes sending and can read the 413.
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 16))
            if not chunk:
                break
            length -= len(chunk)
        return None

    def _trickle_body(self, interval_s: float, release: threading.Event) -> bytes:
        # 1 KiB per interval: the client's sends all progress, its upload takes long.
        length, chunks = int(self.headers.get("Content-Length") or 0), []
        while length > 0:
            chunk = self.rfile.read(min(length, 1024))
            if not chunk:
                break
            chunks.append(chunk)
            length -= len(chunk)
            if not release.is_set():
                release.wait(interval_s)
        return b"".join(chunks)

    def _answer(self, req: Request, status: int, body: Any = None,
                headers: dict[str, str] | None = None, events: list[dict] | None = None) -> None:
        req.status = status
        # Record before answering: a client that has its answer must find the request recorded.
        self.server.api._record(req, events or [])
        content_type = None
        if isinstance(body, dict):
            body, content_type = json.dumps(body).encode(), "application/json"
        elif isinstance(body, str):
            body, content_type = body.encode(), "text/plain; charset=utf-8"
        headers = dict(headers or {})
        names = {k.lower() for k in headers}
        if content_type and "content-type" not in names:
            headers["Content-Type"] = content_type
        # Content-Length on everything but 204/304 (RFC 9110 forbids it there), so keep-alive
        # clients always know where the answer ends.
        if status not in (204, 304) and "content-length" not in names:
            headers["Content-Length"] = str(len(body or b""))
        if "date" in names:  # the test's own Date (a server clock far from ours) replaces ours
            self.send_response_only(status)
            self.send_header("Server", self.version_string())
        else:
            self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, str(value))
        self.end_headers()
        if body and status not in (204, 304):
            self.wfile.write(body)


class _Drip:
    """A write-only stream that sends one byte per ``interval_s``; a release sends the rest."""

    def __init__(self, stream: Any, interval_s: float, release: threading.Event) -> None:
        self.stream = stream
        self._interval_s = interval_s
        self._release = release

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        for i in range(len(view)):
            if self._release.is_set():
                self.stream.write(view[i:])
                break
            self.stream.write(view[i:i + 1])
            self.stream.flush()
            self._release.wait(self._interval_s)
        return len(data)

    def __getattr__(self, name: str) -> Any:  # closed, close(): the real stream's
        return getattr(self.stream, name)


def _decode(raw: bytes, headers: dict[str, str]) -> tuple[Any, str | None]:
    """Return (parsed JSON or None, error message or None) for a request body."""
    if not raw:
        return None, None
    if headers.get("content-encoding", "").lower() == "gzip":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            return None, f"bad gzip body: {exc}"
    try:
        return json.loads(raw), None
    except ValueError as exc:
        return None, f"invalid JSON: {exc}"


def _bucket_problem(bucket: Any) -> str | None:
    """The service's bucket-key rule (the one isstreamer.model writes down) for any JSON value."""
    return bucket_key_problem(bucket if isinstance(bucket, str) else None)


class ApiServer:
    """The Initial State events API on 127.0.0.1, recording everything, failing on command."""

    def __init__(self, access_keys: Iterable[str] | None = (DEFAULT_ACCESS_KEY,),
                 max_body: int = 1_000_000, host: str = "127.0.0.1", port: int = 0) -> None:
        self.access_keys = None if access_keys is None else set(access_keys)  # None: any key
        self.max_body = max_body
        self.host = host
        self.port = port
        self.requests: list[Request] = []
        self.events: list[dict] = []
        self.buckets: dict[str, str] = {}
        self._cond = threading.Condition()  # guards everything below and the lists above
        self._behaviours: dict[str, deque[_Behaviour]] = {}
        self._release = threading.Event()  # set (and replaced) to release hangs and delays
        self._conns: dict[socket.socket, int] = {}  # open connections -> connection id
        self._conn_ids = itertools.count(1)
        self._running: tuple[_HTTPServer, threading.Thread, socket.socket] | None = None
        self._poison: dict[Any, int] = {}  # event value -> status for any batch holding it

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ApiServer:
        """Listen (on the same port as before after a stop()) and serve in daemon threads."""
        if self._running:
            return self
        httpd = _HTTPServer(self, (self.host, self.port))
        self.port = httpd.server_address[1]
        wake_r, wake_w = socket.socketpair()
        thread = threading.Thread(target=self._serve, args=(httpd, wake_r), daemon=True,
                                  name=f"ApiServer:{self.port}")
        self._running = (httpd, thread, wake_w)
        thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every open connection; hung requests are released."""
        if not self._running:
            return
        httpd, thread, wake_w = self._running
        self._running = None
        wake_w.send(b"\0")  # wakes the accept loop without a polling interval
        thread.join()
        wake_w.close()
        httpd.server_close()  # from now on connecting is refused
        self._release_all()
        with self._cond:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes a handler blocked reading; close is theirs
            except OSError:
                pass
        with self._cond:  # handlers end promptly once their sockets are shut down
            self._cond.wait_for(lambda: not self._conns, timeout=5)

    def fail(self, status: int, times: int | None = 1, headers: dict | None = None,
             body: str | bytes | dict | None = None, path: str = EVENTS_PATH) -> None:
        """Answer the next ``times`` requests to ``path`` with ``status`` (None: until clear())."""
        self._queue(path, _Behaviour("fail", times, status, headers, body))

    def hang(self, times: int | None = 1, path: str = EVENTS_PATH) -> None:
        """Read the next requests, then never answer until clear() or stop()."""
        self._queue(path, _Behaviour("hang", times))

    def reset(self, times: int | None = 1, path: str = EVENTS_PATH) -> None:
        """Read the next requests, then abort their TCP connection (RST) without an answer."""
        self._queue(path, _Behaviour("reset", times))

    def delay(self, seconds: float, times: int | None = 1, path: str = EVENTS_PATH) -> None:
        """Wait ``seconds`` before answering the next requests normally."""
        self._queue(path, _Behaviour("delay", times, seconds=seconds))

    def drip(self, interval_s: float, times: int | None = 1, path: str = EVENTS_PATH) -> None:
        """Answer the next requests normally, but one byte (status line, headers, body) per
        ``interval_s`` seconds: every socket read of the client succeeds, the answer takes long."""
        self._queue(path, _Behaviour("drip", times, seconds=interval_s))

    def trickle(self, interval_s: float, times: int | None = 1, path: str = EVENTS_PATH) -> None:
        """Read the body of the next requests 1 KiB per ``interval_s`` seconds, then answer."""
        self._queue(path, _Behaviour("trickle", times, seconds=interval_s))

    def poison(self, value: Any, status: int = 500) -> None:
        """Answer ``status`` to every batch holding an event with this value, until clear()."""
        with self._cond:
            self._poison[value] = status

    def poisoned(self, events: list[dict]) -> int | None:
        """The status to answer for a batch holding a poisoned value, else None."""
        with self._cond:
            if not self._poison:
                return None
            for event in events:
                value = event.get("value")
                if isinstance(value, (str, int, float)) and value in self._poison:
                    return self._poison[value]
        return None

    def clear(self) -> None:
        """Drop queued behaviours and release hung requests (their connections close)."""
        with self._cond:
            self._behaviours.clear()
            self._poison.clear()
        self._release_all()

    def events_for(self, bucket_key: str) -> list[dict]:
        with self._cond:
            return [e for e in self.events if e["bucket"] == bucket_key]

    def wait_for_events(self, n: int, timeout: float = 10.0) -> bool:
        """Wait until at least ``n`` events were accepted."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.events) >= n, timeout)

    def wait_for_requests(self, n: int, timeout: float = 10.0, path: str | None = None) -> bool:
        """Wait until at least ``n`` requests (to ``path``, if given) were received."""
        def enough() -> bool:
            return sum(1 for r in self.requests if path in (None, r.path)) >= n

        with self._cond:
            return self._cond.wait_for(enough, timeout)

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- used by the handler threads --------------------------------------------------------
    def _serve(self, httpd: _HTTPServer, wake: socket.socket) -> None:
        with selectors.DefaultSelector() as selector, wake:
            selector.register(httpd.socket, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while True:
                if any(key.fileobj is wake for key, _ in selector.select()):
                    return  # stop()
                try:
                    request, address = httpd.get_request()
                except OSError:
                    continue
                httpd.process_request(request, address)

    def _queue(self, path: str, behaviour: _Behaviour) -> None:
        if behaviour.times is None or behaviour.times > 0:
            with self._cond:
                self._behaviours.setdefault(path, deque()).append(behaviour)

    def _next_behaviour(self, path: str) -> tuple[_Behaviour | None, threading.Event]:
        with self._cond:
            queue = self._behaviours.get(path)
            if not queue:
                return None, self._release
            behaviour = queue[0]
            if behaviour.times is not None:
                behaviour.times -= 1
                if behaviour.times == 0:
                    queue.popleft()
            return behaviour, self._release

    def _release_all(self) -> None:
        with self._cond:
            self._release.set()
            self._release = threading.Event()

    def _record(self, request: Request, events: list[dict]) -> None:
        with self._cond:
            self.requests.append(request)
            self.events.extend(events)
            self._cond.notify_all()
