"""The HTTP side of ApiServer: one handler thread per connection, answering as the Initial
State events API does, or misbehaving as the ApiServer was told."""

from __future__ import annotations

import gzip
import json
import socket
import socketserver
import struct
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from ..model import bucket_key_problem

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


class _Api(Protocol):
    """What the handler threads use of their ApiServer: its settings and its records."""

    host: str
    max_body: int
    access_keys: set[str] | None
    buckets: dict[str, str]
    _cond: threading.Condition
    _conns: dict[socket.socket, int]

    @property
    def _conn_ids(self) -> Iterator[int]: ...

    def _next_behaviour(self, path: str) -> tuple[_Behaviour | None, threading.Event]: ...

    def _record(self, request: Request, events: list[dict]) -> None: ...

    def poisoned(self, events: list[dict]) -> int | None: ...


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # so start() after stop() can rebind the port at once

    def __init__(self, api: _Api, address: tuple[str, int]) -> None:
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
            raw: bytes | None = self._trickle_body(behaviour.seconds, release)
        else:
            raw = self._read_body()  # None: larger than max_body (read and discarded)
        payload, error = _decode(raw or b"", headers)
        req = Request(
            self.command,
            url.path,
            dict(pairs),
            headers,
            raw or b"",
            payload,
            0,
            received,
            api._conns.get(self.connection, 0),
        )
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
        events = [
            {"key": k, "value": v, "epoch": time.time()}
            for k, v in pairs
            if k not in _CREDENTIAL_PARAMS
        ]
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

    def _answer(
        self,
        req: Request,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        events: list[dict] | None = None,
    ) -> None:
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
            self.stream.write(view[i : i + 1])
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
    if not isinstance(bucket, str):
        return "missing bucket key"
    return bucket_key_problem(bucket)  # the rule the collector applies
