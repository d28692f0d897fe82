"""The kept-alive POST's answer reader follows http.client's rules, and the sink survives
every answer shape over a real socket."""

from __future__ import annotations

import http.client
import io
import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from isstreamer.sinks.base import Bucket, Outcome
from isstreamer.sinks.initialstate import InitialStateSink
from isstreamer.sinks.keepalive import AnswerHeaders, read_answer

EVENTS = [("temp", 21.5, 1700000000.25)]


def read(raw: bytes) -> tuple:
    """read_answer over raw bytes, plus what is left unread after it."""
    stream = io.BytesIO(raw)
    answer = read_answer(stream)
    return (*answer, stream.read())


def test_no_content() -> None:
    """A 204 has no body even with bytes after it, and keeps the connection."""
    status, reason, headers, body, close, rest = read(
        b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\nNEXT"
    )
    assert (status, reason, body, close, rest) == (204, "No Content", b"", False, b"NEXT")
    assert headers.get("server") == "x"


def test_content_length_body() -> None:
    """Content-Length bounds the body exactly."""
    status, _, _, body, close, rest = read(
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\nhelloNEXT"
    )
    assert (status, body, close, rest) == (400, b"hello", False, b"NEXT")


def test_chunked_body_with_extension_and_trailer() -> None:
    """Chunked bodies are joined; chunk extensions and trailer fields are skipped."""
    raw = (
        b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4;name=x\r\n{"a"\r\n3\r\n:1}\r\n0\r\nX-Trailer: y\r\n\r\nNEXT'
    )
    _, _, _, body, close, rest = read(raw)
    assert (body, close, rest) == (b'{"a":1}', False, b"NEXT")


def test_interim_100_continue_is_skipped() -> None:
    """A 100 Continue before the answer is passed over, as http.client does."""
    status, _, headers, _, _, _ = read(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nDate: d\r\n\r\n"
    )
    assert status == 204 and headers.get("Date") == "d"


@pytest.mark.parametrize(
    "head, close",
    [
        (b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", True),
        (b"HTTP/1.1 204 No Content\r\nConnection: Keep-Alive\r\n\r\n", False),
        (b"HTTP/1.0 204 No Content\r\n\r\n", True),
        (b"HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx", True),
    ],
)
def test_connection_kept_or_closed(head: bytes, close: bool) -> None:
    """Connection: close, HTTP/1.0 without keep-alive and a body without length close it."""
    assert read(head)[4] is close


def test_body_until_close() -> None:
    """Without length or chunking, the body runs to the end of the connection."""
    assert read(b"HTTP/1.1 200 OK\r\n\r\nall of it")[3] == b"all of it"


def test_repeated_and_folded_headers() -> None:
    """Repeated fields are joined with ', ', names ignore case, folded lines are continued."""
    headers = read(
        b"HTTP/1.1 204 No Content\r\nX-A: 1\r\nx-a: 2\r\nX-Long: one\r\n two\r\n"
        b"no colon here\r\n\r\n"
    )[2]
    assert headers.get("X-A") == "1, 2" and headers.get("x-long") == "one two"
    assert list(headers.items()) == [("X-A", "1"), ("x-a", "2"), ("X-Long", "one two")]
    assert headers.get("missing") is None


@pytest.mark.parametrize(
    "raw, error",
    [
        (b"", http.client.RemoteDisconnected),
        (b"SPDY/3 200 OK\r\n\r\n", http.client.BadStatusLine),
        (b"HTTP/1.1 abc OK\r\n\r\n", http.client.BadStatusLine),
        (b"HTTP/1.1 99 Low\r\n\r\n", http.client.BadStatusLine),
        (b"HTTP/2 204 No\r\n\r\n", http.client.UnknownProtocol),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", http.client.IncompleteRead),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            http.client.IncompleteRead,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nabc",
            http.client.IncompleteRead,
        ),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", http.client.HTTPException),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70000 + b"\r\n\r\n", http.client.LineTooLong),
    ],
)
def test_malformed_answers_raise_http_client_errors(raw: bytes, error: type) -> None:
    """Broken answers raise the http.client exception http.client raises for them."""
    with pytest.raises(error):
        read(raw)


def test_answer_headers_defaults() -> None:
    """AnswerHeaders.get returns the default for a missing field."""
    assert AnswerHeaders([]).get("Date", "none") == "none"


# ---- over a real socket ---------------------------------------------------------------


class Scripted:
    """A socket server that answers each request with the next scripted raw answer; after
    an answer marked close it closes the connection. Records (connection number, request)."""

    def __init__(self, answers: list[tuple[bytes, bool]]) -> None:
        self.answers = answers
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.seen: list[tuple[int, bytes]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        number = 0
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            number += 1
            threading.Thread(target=self._talk, args=(conn, number), daemon=True).start()

    def _talk(self, conn: socket.socket, number: int) -> None:
        data = b""
        with conn:
            while self.answers:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(data) < length:
                    data += conn.recv(65536)
                self.seen.append((number, head + b"\r\n\r\n" + data[:length]))
                data = data[length:]
                answer, close = self.answers.pop(0)
                conn.sendall(answer)
                if close:
                    return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted([])
    yield server
    server.close()


NO_CONTENT = (b"HTTP/1.1 204 No Content\r\n\r\n", False)


def test_sink_over_chunked_and_closing_answers(scripted: Scripted) -> None:
    """Chunked errors keep the connection; HTTP/1.0 and read-to-close answers end it and the
    next send reconnects; every outcome is what the status says."""
    scripted.answers += [
        (b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", False),  # bucket
        NO_CONTENT,
        (
            b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'17\r\n{"message": "overload"}\r\n0\r\n\r\n',
            False,
        ),
        (b"HTTP/1.0 204 No Content\r\n\r\n", True),
        NO_CONTENT,
        (b'HTTP/1.1 400 Bad Request\r\n\r\n{"message": "no"}', True),
        NO_CONTENT,
    ]
    sink = InitialStateSink(scripted.url, "k", timeout=5)
    try:
        results = [sink.send(Bucket("b"), EVENTS) for _ in range(6)]
    finally:
        sink.close()
    assert [r.outcome for r in results] == [
        Outcome.OK,
        Outcome.RETRY,
        Outcome.OK,
        Outcome.OK,
        Outcome.BAD,
        Outcome.OK,
    ]
    assert results[1].message == "503 Busy: overload" and results[4].message.endswith("no")
    assert [n for n, _ in scripted.seen] == [1, 1, 1, 1, 2, 2, 3]


@pytest.mark.parametrize(
    "garbage",
    [
        b"HTTP/1.1 abc\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        b"",
    ],
)
def test_sink_maps_broken_answers_to_retry(scripted: Scripted, garbage: bytes) -> None:
    """A broken or missing answer on a kept-alive connection is RETRY ('cannot reach'), and
    the next send succeeds on a new connection."""
    scripted.answers += [NO_CONTENT, NO_CONTENT, (garbage, True), NO_CONTENT]
    sink = InitialStateSink(scripted.url, "k", timeout=5)
    try:
        assert sink.send(Bucket("b"), EVENTS).ok
        failed = sink.send(Bucket("b"), EVENTS)
        after = sink.send(Bucket("b"), EVENTS)
    finally:
        sink.close()
    assert failed.outcome is Outcome.RETRY and failed.message.startswith("cannot reach")
    # the cause, named by isstreamer.failures
    assert "no whole answer" in failed.message or "connection reset" in failed.message
    assert after.ok and [n for n, _ in scripted.seen] == [1, 1, 1, 2]


def test_kept_alive_post_writes_what_the_adapter_writes() -> None:
    """The fast path's request (head and body) is byte for byte what HTTPAdapter.send writes,
    credentials in the URL and extra query parameters included."""
    server = Scripted([NO_CONTENT] * 6)
    base = server.url.replace("http://", "http://user:pw@") + "/?region=eu"
    plain = requests.Session()  # a caller's session: every request goes through send()
    plain.mount("http://", requests.adapters.HTTPAdapter())
    try:
        for session in (plain, None):
            sink = InitialStateSink(base, "the-key", session=session)
            try:
                assert sink.send(Bucket("b"), EVENTS).ok
                assert sink.send(Bucket("b"), EVENTS * 3).ok
            finally:
                sink.close()
    finally:
        server.close()
    slow, fast = [raw for _, raw in server.seen[:3]], [raw for _, raw in server.seen[3:]]
    assert len(fast) == 3 and fast == slow
    assert fast[1].startswith(b"POST /api/events?region=eu HTTP/1.1\r\n")


def test_requests_headers_join_repeated_fields() -> None:
    """The requests view of an answer's headers has each field once, values joined."""
    headers = AnswerHeaders([("Retry-After", "1"), ("Date", "d"), ("retry-after", "2")])
    joined = headers.joined()
    assert dict(joined) == {"Retry-After": "1, 2", "Date": "d"}
    assert joined["RETRY-AFTER"] == "1, 2"
