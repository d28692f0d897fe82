"""One POST on a connection urllib3's pool keeps alive: the request head written in one piece,
the answer read with a small HTTP/1.1 reader.

Why: for a 10-event batch, urllib3 and requests spend more CPU per request (headers written
one by one, Timeout objects, their response objects) than the batch is worth, and the
email-based header parser of http.client costs several times what the few headers of an
answer need. Connecting, TLS and proxies are not done here (see LeanAdapter.post_kept_alive).
The reader follows http.client where it decides something: interim 1xx answers skipped, no
body for 204/304, chunked, Content-Length or read-to-close framing, Connection and HTTP/1.0
keep-alive rules, its line and header-count limits, and its exceptions.
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
from collections.abc import Iterable
from typing import Any, BinaryIO

import requests
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from .deadline import Watchdog

_JOIN_BELOW = 64 * 1024  # bodies up to this size go out in one send() with the head
_MAX_LINE = 65536  # http.client's _MAXLINE
_MAX_HEADERS = 100  # http.client's _MAXHEADERS
_END_OF_HEAD = (b"\r\n", b"\n", b"")


class AnswerHeaders:
    """An answer's header fields: ``get`` ignores case and joins a repeated field with ", ",
    as the headers of requests' responses do; ``items`` gives the fields as received."""

    __slots__ = ("_fields", "_joined")

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields = fields
        joined: dict[str, tuple[str, str]] = {}  # lower-case name -> (name, joined values)
        for name, value in fields:
            key = name.lower()
            seen = joined.get(key)
            joined[key] = (name, value) if seen is None else (seen[0], f"{seen[1]}, {value}")
        self._joined = joined

    def get(self, name: str, default: str | None = None) -> str | None:
        field = self._joined.get(name.lower())
        return default if field is None else field[1]

    def items(self) -> Iterable[tuple[str, str]]:
        return list(self._fields)

    def joined(self) -> CaseInsensitiveDict[str]:
        """requests' headers of this answer (a repeated field once, its values joined)."""
        return CaseInsensitiveDict(dict(self._joined.values()))


Answer = tuple[int, str, AnswerHeaders, bytes]  # status, reason, headers, complete body


def request_head(request: PreparedRequest, path: str, pool: Any) -> tuple[bytes, bytes] | None:
    """The head HTTPAdapter.send writes for ``request`` on ``pool``'s connections, split
    where the Content-Length value goes; None when only send() can write it."""
    names = {name.lower() for name in request.headers}
    if not path.startswith("/") or "content-length" not in names or "host" in names:
        return None  # a plain-HTTP proxy's absolute URL, or a head unlike the sink's
    if "user-agent" not in names or "transfer-encoding" in names:
        return None
    if not isinstance(request.method, str):
        return None  # prepare() makes it a str; anything else is not the sink's request
    lines = [f"{request.method} {path} HTTP/1.1", f"Host: {_host(pool)}"]
    if "accept-encoding" not in names:
        lines.append("Accept-Encoding: identity")  # what http.client.putrequest adds
    for name, value in request.headers.items():
        if not isinstance(value, str):
            return None  # bytes values: http.client writes them raw, send() does that
        lines.append(f"{name}: {value}")
    try:
        text = "\r\n".join(lines).encode("latin-1")  # http.client's header encoding
    except UnicodeEncodeError:
        return None
    mark = text.lower().index(b"\r\ncontent-length: ") + len(b"\r\ncontent-length: ")
    end = text.find(b"\r\n", mark)
    after = (text[end:] if end >= 0 else b"") + b"\r\n\r\n"
    return text[:mark], after


def _host(pool: Any) -> str:
    """The Host header http.client writes for ``pool``'s connections (urllib3 drops the
    trailing dot of a fully qualified name; the port only when not the scheme's default)."""
    host = str(pool.host)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.rstrip(".")
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        host = host.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    port = pool.port
    if port is None or port == pool.ConnectionCls.default_port:
        return host
    return f"{host}:{port}"


def exchange(
    conn: Any, head: tuple[bytes, bytes], body: bytes, timeout: float | None, watchdog: Watchdog
) -> Answer:
    """Write one request on connected ``conn`` and read its whole answer; a failure closes
    the connection and raises what requests raises for it."""
    sock = conn.sock
    try:
        sock.settimeout(timeout)
        watchdog.attach(conn)
        start = head[0] + str(len(body)).encode() + head[1]
        try:
            if len(body) < _JOIN_BELOW:
                sock.sendall(start + body)
            else:
                sock.sendall(start)
                sock.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # as urllib3: the server may have answered (413) before reading it all
        stream = sock.makefile("rb")
        try:
            status, reason, headers, content, close = read_answer(stream)
        finally:
            stream.close()
        if close:
            conn.close()
        return status, reason, headers, content
    except socket.timeout as exc:  # TimeoutError since 3.10
        conn.close()
        raise requests.exceptions.ReadTimeout(exc) from exc
    except ssl.SSLError as exc:
        conn.close()
        raise requests.exceptions.SSLError(exc) from exc
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise requests.ConnectionError(exc) from exc
    except BaseException:
        conn.close()
        raise


def read_answer(stream: BinaryIO) -> tuple[int, str, AnswerHeaders, bytes, bool]:
    """(status, reason, headers, body, whether the server closes the connection after it)
    of the answer at the start of ``stream``."""
    while True:
        version, status, reason = _status_line(stream)
        headers = _header_fields(stream)
        if not 100 <= status < 200:
            break  # 1xx (100 Continue) are interim answers: the real one follows
    connection = (headers.get("connection") or "").lower()
    if version == "HTTP/1.0" or version == "HTTP/0.9":
        close = "keep-alive" not in connection and headers.get("keep-alive") is None
    else:
        close = "close" in connection
    if status in (204, 304):
        return status, reason, headers, b"", close
    coding = headers.get("transfer-encoding")
    if coding is not None and coding.lower() == "chunked":
        return status, reason, headers, _chunked(stream), close
    try:
        length = int(headers.get("content-length") or "-1")
    except ValueError:  # repeated or garbled: delimited by the end of the connection
        length = -1
    if length < 0:
        return status, reason, headers, stream.read(), True
    content = stream.read(length)
    if len(content) < length:
        raise http.client.IncompleteRead(content, length - len(content))
    return status, reason, headers, content, close


def _line(stream: BinaryIO) -> bytes:
    line = stream.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise http.client.LineTooLong("header line")
    return line


def _status_line(stream: BinaryIO) -> tuple[str, int, str]:
    line = _line(stream)
    if not line:
        raise http.client.RemoteDisconnected("Remote end closed connection without response")
    parts = line.decode("iso-8859-1").split(None, 2)
    try:
        version, code = parts[0], parts[1]
        status = int(code)
    except (IndexError, ValueError):
        raise http.client.BadStatusLine(repr(line)) from None
    if not version.startswith("HTTP/") or not 100 <= status <= 999:
        raise http.client.BadStatusLine(repr(line))
    if not version.startswith("HTTP/1.") and version != "HTTP/0.9":
        raise http.client.UnknownProtocol(version)
    return version, status, parts[2].strip() if len(parts) > 2 else ""


def _header_fields(stream: BinaryIO) -> AnswerHeaders:
    fields: list[tuple[str, str]] = []
    while True:
        line = _line(stream)
        if line in _END_OF_HEAD:
            return AnswerHeaders(fields)
        if len(fields) >= _MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
        text = line.decode("iso-8859-1")
        if text[0] in " \t" and fields:  # an obsolete folded continuation line
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {text.strip()}")
            continue
        name, colon, value = text.partition(":")
        if colon:
            fields.append((name.strip(), value.strip()))


def _chunked(stream: BinaryIO) -> bytes:
    parts: list[bytes] = []
    while True:
        size_field = _line(stream).split(b";", 1)[0]
        try:
            size = int(size_field, 16)
        except ValueError:
            raise http.client.IncompleteRead(b"".join(parts)) from None
        if size == 0:
            break
        chunk = stream.read(size)
        if len(chunk) < size:
            raise http.client.IncompleteRead(b"".join(parts) + chunk, size - len(chunk))
        parts.append(chunk)
        stream.read(2)  # the CRLF after each chunk
    while _line(stream) not in _END_OF_HEAD:  # trailer fields: not used
        pass
    return b"".join(parts)


def as_response(answer: Answer, request: PreparedRequest, adapter: HTTPAdapter) -> Response:
    """A requests.Response for an answer of exchange(), as HTTPAdapter.send builds it."""
    status, reason, headers, content = answer
    response = Response()
    response.status_code = status
    response.headers = headers.joined()
    response.encoding = get_encoding_from_headers(response.headers)
    response.raw = io.BytesIO(content)
    response.reason = reason
    response.url = str(request.url)
    response.request = request
    response.connection = adapter
    return response
