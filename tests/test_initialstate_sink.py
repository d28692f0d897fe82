"""The Initial State HTTP sink against the real local ApiServer: wire format and outcome mapping."""

from __future__ import annotations

import email.utils
import http.server
import json
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from apiserver import ApiServer

from isstreamer import __version__
from isstreamer.sinks.base import Bucket, Outcome, SendResult, Sink
from isstreamer.sinks.initialstate import (
    DEFAULT_API_BASE,
    InitialStateSink,
    LeanAdapter,
    public_address,
)

BUCKET = Bucket("bucket-1", "Bucket One")
EVENTS = [
    ("temp", 21.5, 1700000000.25),
    ("on", True, 1700000001.0),
    ("count", 3, 1700000002.0),
    ("name", "kitchen", 1700000003.0),
]
LONG_KEY = "ist_0123456789abcdefSECRETa1b2"


@pytest.fixture
def sink(api_server: ApiServer, access_key: str) -> Iterator[InitialStateSink]:
    """A sink pointed at the local server with the key it accepts."""
    s = InitialStateSink(api_server.url, access_key, timeout=5.0)
    yield s
    s.close()


@pytest.fixture
def any_key_server() -> Iterator[ApiServer]:
    """A server that accepts every access key, for tests that need a realistic long key."""
    with ApiServer(access_keys=None) as server:
        yield server


def assert_key_hidden(text: str, key: str) -> None:
    """No run of five or more characters of the key appears in text."""
    for i in range(len(key) - 4):
        assert key[i : i + 5] not in text, f"{key[i : i + 5]!r} of the key is visible in {text!r}"


# ---- the wire ---------------------------------------------------------------------------


def test_sink_satisfies_protocol(sink: InitialStateSink) -> None:
    """The sink has an address and send/close, as the Sink protocol asks."""
    assert isinstance(sink, Sink)


def test_creates_bucket_once_before_first_events(
    sink: InitialStateSink, api_server: ApiServer
) -> None:
    """The first send POSTs /api/buckets then /api/events; later sends to it only POST events."""
    assert sink.send(BUCKET, EVENTS[:2]).ok
    assert sink.send(BUCKET, EVENTS[2:]).ok
    assert [(r.method, r.path) for r in api_server.requests] == [
        ("POST", "/api/buckets"),
        ("POST", "/api/events"),
        ("POST", "/api/events"),
    ]
    assert api_server.requests[0].json == {"bucketKey": "bucket-1", "bucketName": "Bucket One"}
    assert api_server.requests[0].status == 201
    assert api_server.buckets == {"bucket-1": "Bucket One"}


def test_each_bucket_created_before_its_events(
    sink: InitialStateSink, api_server: ApiServer
) -> None:
    """A second bucket is created before its first events; a nameless bucket is named by its key."""
    sink.send(BUCKET, EVENTS[:1])
    sink.send(Bucket("bucket-2"), EVENTS[:1])
    assert [(r.path, r.headers["x-is-bucketkey"]) for r in api_server.requests] == [
        ("/api/buckets", "bucket-1"),
        ("/api/events", "bucket-1"),
        ("/api/buckets", "bucket-2"),
        ("/api/events", "bucket-2"),
    ]
    assert api_server.buckets["bucket-2"] == "bucket-2"


def test_existing_bucket_204_counts_as_created(
    sink: InitialStateSink, api_server: ApiServer, access_key: str
) -> None:
    """A bucket the server already has (204) is fine; a new sink creates it once more and sends."""
    sink.send(BUCKET, EVENTS[:1])
    other = InitialStateSink(api_server.url, access_key)
    try:
        assert other.send(BUCKET, EVENTS[:1]).ok
    finally:
        other.close()
    assert [r.status for r in api_server.requests if r.path == "/api/buckets"] == [201, 204]


def test_headers(sink: InitialStateSink, api_server: ApiServer, access_key: str) -> None:
    """Each request has Content-Type, access and bucket keys, Accept-Version ~0, our User-Agent."""
    sink.send(BUCKET, EVENTS)
    for req in api_server.requests:
        h = req.headers
        assert h["content-type"] == "application/json"
        assert h["x-is-accesskey"] == access_key
        assert h["x-is-bucketkey"] == "bucket-1"
        assert h["accept-version"] == "~0"
        assert h["user-agent"] == f"isstreamer/{__version__}"
        assert int(h["content-length"]) == len(req.body)


def test_body_is_json_array_with_types_kept(sink: InitialStateSink, api_server: ApiServer) -> None:
    """The events body is a JSON array of {key, value, epoch} with bool/int/float/str kept."""
    sink.send(BUCKET, EVENTS)
    body = api_server.requests[-1].json
    assert body == [{"key": k, "value": v, "epoch": e} for k, v, e in EVENTS]
    assert [type(e["value"]) for e in body] == [float, bool, int, str]
    assert json.loads(api_server.requests[-1].body) == body
    assert [(e["key"], e["value"], e["bucket"]) for e in api_server.events] == [
        (k, v, "bucket-1") for k, v, _ in EVENTS
    ]


def test_keep_alive_reuses_one_connection(sink: InitialStateSink, api_server: ApiServer) -> None:
    """Bucket creation and several batches travel over the same TCP connection."""
    for _ in range(4):
        assert sink.send(BUCKET, EVENTS).ok
    sink.send(Bucket("bucket-2"), EVENTS)
    assert len(api_server.requests) == 7
    assert len({r.conn for r in api_server.requests}) == 1


def test_keep_alive_survives_error_answers(sink: InitialStateSink, api_server: ApiServer) -> None:
    """An error answer with a body (400, 503) does not cost the connection."""
    sink.send(BUCKET, EVENTS)
    api_server.fail(400)
    api_server.fail(503)
    sink.send(BUCKET, EVENTS)
    sink.send(BUCKET, EVENTS)
    assert sink.send(BUCKET, EVENTS).ok
    assert len({r.conn for r in api_server.requests}) == 1


def test_default_api_base() -> None:
    """The default receiver is Initial State's groker."""
    assert DEFAULT_API_BASE == "https://groker.init.st"


# ---- outcomes ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_ok(sink: InitialStateSink, api_server: ApiServer, status: int) -> None:
    """Any 2xx answer to the events POST is OK."""
    api_server.fail(status)
    result = sink.send(BUCKET, EVENTS)
    assert result.ok and result.retry_after is None


def test_400_is_bad_with_server_message(sink: InitialStateSink, api_server: ApiServer) -> None:
    """400 is BAD and carries the server's message, also from ISStreamer's nested error shape."""
    api_server.fail(400, body={"message": "every event needs a key and a value"})
    result = sink.send(BUCKET, EVENTS)
    assert result.outcome is Outcome.BAD and result.status == 400
    assert "every event needs a key and a value" in result.message
    api_server.fail(400, body={"message": {"error": {"type": "BUCKET_REMOVED"}}})
    assert "BUCKET_REMOVED" in sink.send(BUCKET, EVENTS).message
    api_server.fail(400, body="plain text reason")
    assert "plain text reason" in sink.send(BUCKET, EVENTS).message


def test_400_message_is_bounded(sink: InitialStateSink, api_server: ApiServer) -> None:
    """A huge error body is shortened for the log line."""
    api_server.fail(400, body="x" * 100_000)
    assert len(sink.send(BUCKET, EVENTS).message) < 1000


def test_real_401_wrong_key(api_server: ApiServer) -> None:
    """An unknown key gives AUTH 401, whose message names the cause but not the key."""
    sink = InitialStateSink(api_server.url, LONG_KEY)
    try:
        result = sink.send(BUCKET, EVENTS)
    finally:
        sink.close()
    assert result.outcome is Outcome.AUTH and result.status == 401
    assert "401" in result.message and "access key" in result.message
    assert "ist_…a1b2" in result.message
    assert_key_hidden(result.message, LONG_KEY)
    assert [r.path for r in api_server.requests] == [
        "/api/buckets"
    ]  # no events sent with a bad key


@pytest.mark.parametrize(
    "status, cause", [(401, "refused"), (403, "not allowed"), (402, "monthly event limit")]
)
def test_auth_statuses(any_key_server: ApiServer, status: int, cause: str) -> None:
    """401, 403 and 402 are AUTH; the message names the cause and shows at most the redacted key."""
    sink = InitialStateSink(any_key_server.url, LONG_KEY)
    try:
        sink.send(BUCKET, EVENTS[:1])
        any_key_server.fail(status)
        result = sink.send(BUCKET, EVENTS)
    finally:
        sink.close()
    assert result.outcome is Outcome.AUTH and result.status == status
    assert cause in result.message and str(status) in result.message
    assert_key_hidden(result.message, LONG_KEY)


def test_auth_on_bucket_creation_stops_before_events(
    sink: InitialStateSink, api_server: ApiServer
) -> None:
    """A refused bucket creation returns AUTH without sending events, and is retried next time."""
    api_server.fail(401, path="/api/buckets")
    assert sink.send(BUCKET, EVENTS).outcome is Outcome.AUTH
    assert sink.send(BUCKET, EVENTS).ok
    assert [r.path for r in api_server.requests] == ["/api/buckets", "/api/buckets", "/api/events"]


def test_retryable_bucket_creation_is_retried(
    sink: InitialStateSink, api_server: ApiServer
) -> None:
    """A 503 on bucket creation is RETRY, and the next send creates the bucket first again."""
    api_server.fail(503, path="/api/buckets")
    assert sink.send(BUCKET, EVENTS).outcome is Outcome.RETRY
    assert sink.send(BUCKET, EVENTS).ok
    assert [r.path for r in api_server.requests] == ["/api/buckets", "/api/buckets", "/api/events"]


def test_413_is_too_large(sink: InitialStateSink, api_server: ApiServer) -> None:
    """413 asks for a split: TOO_LARGE."""
    api_server.fail(413)
    result = sink.send(BUCKET, EVENTS)
    assert result.outcome is Outcome.TOO_LARGE and result.status == 413


def test_real_413_from_body_limit(access_key: str) -> None:
    """A body over the server's limit is answered 413 and mapped to TOO_LARGE."""
    with ApiServer(access_keys=(access_key,), max_body=2000) as server:
        sink = InitialStateSink(server.url, access_key)
        try:
            big = [("k", "x" * 500, float(i)) for i in range(10)]
            assert sink.send(BUCKET, big).outcome is Outcome.TOO_LARGE
            assert sink.send(BUCKET, big[:1]).ok
        finally:
            sink.close()


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 599])
def test_retryable_statuses(sink: InitialStateSink, api_server: ApiServer, status: int) -> None:
    """408, 429 and 5xx are RETRY with the status in the message."""
    api_server.fail(status)
    result = sink.send(BUCKET, EVENTS)
    assert result.outcome is Outcome.RETRY and result.status == status
    assert str(status) in result.message and result.retry_after is None


def test_retry_after_seconds(sink: InitialStateSink, api_server: ApiServer) -> None:
    """A 429 with Retry-After: 7 asks for 7 seconds."""
    api_server.fail(429, headers={"Retry-After": "7"})
    result = sink.send(BUCKET, EVENTS)
    assert result.outcome is Outcome.RETRY and result.retry_after == 7.0


def test_retry_after_http_date(sink: InitialStateSink, api_server: ApiServer) -> None:
    """A 503 with Retry-After as an HTTP-date asks for the seconds until then."""
    api_server.fail(
        503, headers={"Retry-After": email.utils.formatdate(time.time() + 120, usegmt=True)}
    )
    result = sink.send(BUCKET, EVENTS)
    assert result.outcome is Outcome.RETRY
    assert result.retry_after is not None and 115 <= result.retry_after <= 121


def test_rate_limit_headers_on_429(sink: InitialStateSink, api_server: ApiServer) -> None:
    """A 429 without Retry-After but with X-RateLimit-Remaining 0 waits until X-RateLimit-Reset."""
    reset = int(time.time()) + 30
    api_server.fail(
        429,
        headers={
            "X-RateLimit-Limit": "30",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset),
        },
    )
    result = sink.send(BUCKET, EVENTS)
    assert result.outcome is Outcome.RETRY
    assert result.retry_after is not None and 25 <= result.retry_after <= 30


def test_rate_limit_exhausted_on_success(sink: InitialStateSink, api_server: ApiServer) -> None:
    """A 204 that says X-RateLimit-Remaining: 0 is OK but asks to wait until the reset."""
    reset = int(time.time()) + 10
    api_server.fail(204, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
    result = sink.send(BUCKET, EVENTS)
    assert result.ok and result.outcome is Outcome.OK
    assert result.retry_after is not None and 5 <= result.retry_after <= 10


def test_rate_limit_remaining_requests_no_wait(
    sink: InitialStateSink, api_server: ApiServer
) -> None:
    """While requests remain in the window, a 204 asks for no wait."""
    api_server.fail(
        204, headers={"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": str(int(time.time()) + 10)}
    )
    assert sink.send(BUCKET, EVENTS).retry_after is None


def test_device_clock_in_1970_retry_after_date(api_server: ApiServer, access_key: str) -> None:
    """Device clock at 1970: an HTTP-date Retry-After is measured from the server's Date."""
    sink = InitialStateSink(api_server.url, access_key, timeout=5, wall_clock=lambda: 0.0)
    api_server.fail(
        503, headers={"Retry-After": email.utils.formatdate(time.time() + 120, usegmt=True)}
    )
    try:
        result = sink.send(BUCKET, EVENTS)
    finally:
        sink.close()
    assert result.outcome is Outcome.RETRY
    assert result.retry_after is not None and 115 <= result.retry_after <= 121


def test_device_clock_in_1970_rate_limit_reset(api_server: ApiServer, access_key: str) -> None:
    """With the device clock at 1970, X-RateLimit-Reset is measured from the server's Date."""
    sink = InitialStateSink(api_server.url, access_key, timeout=5, wall_clock=lambda: 0.0)
    api_server.fail(
        429, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 30)}
    )
    try:
        result = sink.send(BUCKET, EVENTS)
    finally:
        sink.close()
    assert result.retry_after is not None and 25 <= result.retry_after <= 31


def test_server_clock_is_the_reference(sink: InitialStateSink, api_server: ApiServer) -> None:
    """Absolute times follow the server's Date even when it is years away from ours."""
    server_time = 1_900_000_000  # 2030: the server's clock, not the device's
    api_server.fail(
        429,
        headers={
            "Date": email.utils.formatdate(server_time, usegmt=True),
            "Retry-After": email.utils.formatdate(server_time + 60, usegmt=True),
        },
    )
    assert sink.send(BUCKET, EVENTS).retry_after == 60.0
    api_server.fail(
        204,
        headers={
            "Date": email.utils.formatdate(server_time, usegmt=True),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(server_time + 9),
        },
    )
    assert sink.send(BUCKET, EVENTS).retry_after == 9.0


@pytest.mark.parametrize("status", [429, 401])
def test_server_wait_is_capped(api_server: ApiServer, access_key: str, status: int) -> None:
    """A Retry-After of a day is capped at max_retry_after_s (600 s unless given)."""
    api_server.fail(status, headers={"Retry-After": "86400"})
    sink = InitialStateSink(api_server.url, access_key, timeout=5)
    try:
        assert sink.send(BUCKET, EVENTS).retry_after == 600.0
        sink.max_retry_after_s = 45.0
        api_server.fail(status, headers={"Retry-After": "86400"})
        assert sink.send(BUCKET, EVENTS).retry_after == 45.0
    finally:
        sink.close()


def test_wrong_path_is_kept_not_dropped(access_key: str, api_server: ApiServer) -> None:
    """A 404 (api_base points elsewhere) keeps the events (AUTH), says to check stream_api_base."""
    sink = InitialStateSink(api_server.url + "/wrong", access_key)
    try:
        result = sink.send(BUCKET, EVENTS)
    finally:
        sink.close()
    assert result.outcome is Outcome.AUTH and result.status == 404
    assert "stream_api_base" in result.message


def test_connection_refused_is_quick_retry(sink: InitialStateSink, api_server: ApiServer) -> None:
    """A stopped server (connection refused) is RETRY within a fraction of a second."""
    sink.send(BUCKET, EVENTS)
    api_server.stop()
    start = time.monotonic()
    result = sink.send(BUCKET, EVENTS)
    assert result.outcome is Outcome.RETRY and result.status is None
    # Generous for a busy machine, and still short of the sink's 5 s timeout.
    assert time.monotonic() - start < 4.0
    assert "cannot reach" in result.message


def test_reconnects_after_server_restart(sink: InitialStateSink, api_server: ApiServer) -> None:
    """After the server comes back on the same port, the next send succeeds on a new connection."""
    sink.send(BUCKET, EVENTS)
    api_server.stop()
    assert sink.send(BUCKET, EVENTS).outcome is Outcome.RETRY
    api_server.start()
    assert sink.send(BUCKET, EVENTS).ok


def test_connection_reset_is_retry(sink: InitialStateSink, api_server: ApiServer) -> None:
    """A connection reset without an answer is RETRY, and the next send works."""
    sink.send(BUCKET, EVENTS)
    api_server.reset()
    assert sink.send(BUCKET, EVENTS).outcome is Outcome.RETRY
    assert sink.send(BUCKET, EVENTS).ok


def test_hang_times_out_as_retry(api_server: ApiServer, access_key: str) -> None:
    """A server that never answers gives RETRY once the 0.3 s timeout passes, not later."""
    sink = InitialStateSink(api_server.url, access_key, timeout=0.3)
    try:
        assert sink.send(BUCKET, EVENTS).ok
        api_server.hang()
        start = time.monotonic()
        result = sink.send(BUCKET, EVENTS)
        elapsed = time.monotonic() - start
    finally:
        sink.close()
    assert result.outcome is Outcome.RETRY
    assert elapsed >= 0.25
    assert elapsed < 10.0  # generous on a busy machine; the hang itself never ends
    assert "0.3 s" in result.message


def test_drip_server_sends_one_byte_per_read(api_server: ApiServer, access_key: str) -> None:
    """The drip mode really answers byte by byte, so every socket read of a client succeeds."""
    api_server.drip(0.05, path="/api/buckets")
    with socket.create_connection((api_server.host, api_server.port), timeout=5) as conn:
        conn.sendall(
            b"POST /api/buckets HTTP/1.1\r\nHost: x\r\nX-IS-AccessKey: "
            + access_key.encode()
            + b'\r\nContent-Length: 17\r\n\r\n{"bucketKey":"b"}'
        )
        assert api_server.wait_for_requests(1)
        first = conn.recv(100)
    assert first == b"H"


def send_while(
    server: ApiServer,
    key: str,
    timeout_s: float,
    misbehave: Callable[[], None],
    events: list = EVENTS,
) -> tuple[SendResult, float, SendResult]:
    """(result, seconds taken) of one send while the server misbehaves, between two healthy
    sends, and the result of the healthy send after it."""
    sink = InitialStateSink(server.url, key, timeout=timeout_s)
    try:
        assert sink.send(BUCKET, EVENTS).ok
        misbehave()
        start = time.monotonic()
        result = sink.send(BUCKET, events)
        elapsed = time.monotonic() - start
        server.clear()
        return result, elapsed, sink.send(BUCKET, EVENTS)
    finally:
        sink.close()


def test_dripping_answer_is_cut_at_the_timeout(api_server: ApiServer, access_key: str) -> None:
    """An answer dripped one byte per 0.2 s (20 s in all) ends as RETRY at the 0.5 s timeout."""
    result, elapsed, after = send_while(api_server, access_key, 0.5, lambda: api_server.drip(0.2))
    assert result.outcome is Outcome.RETRY and "within 0.5 s" in result.message
    assert elapsed < 5.0  # per-read timeouts alone would have waited for all ~100 bytes
    assert after.ok  # the cut connection was replaced


@pytest.mark.slow
def test_slowly_read_upload_is_cut_at_the_timeout(access_key: str) -> None:
    """A server reading an 8 MB upload 1 KiB per 50 ms (minutes in all) is cut off at the 1 s
    timeout, with the connection usable again afterwards."""
    events = [(f"k{i % 50}", i + 0.5, 1700000000.0 + i) for i in range(160_000)]
    with ApiServer(access_keys=(access_key,), max_body=100_000_000) as server:
        result, elapsed, after = send_while(
            server, access_key, 1.0, lambda: server.trickle(0.05), events
        )
    assert result.outcome is Outcome.RETRY and "within 1 s" in result.message
    assert elapsed < 10.0 and after.ok  # generous: the whole upload would take minutes


def test_dripping_bucket_creation_is_cut_too(api_server: ApiServer, access_key: str) -> None:
    """The deadline covers every request of the sink, bucket creation included."""
    sink = InitialStateSink(api_server.url, access_key, timeout=0.5)
    api_server.drip(0.2, path="/api/buckets")
    try:
        result = sink.send(BUCKET, EVENTS)
        assert result.outcome is Outcome.RETRY and "within 0.5 s" in result.message
        assert sink.send(BUCKET, EVENTS).ok
    finally:
        sink.close()
    assert len(api_server.events) == len(EVENTS)


def test_slow_answer_within_the_timeout_is_kept(api_server: ApiServer, access_key: str) -> None:
    """An answer that drips but completes before the deadline is a normal success."""
    sink = InitialStateSink(api_server.url, access_key, timeout=30)
    try:
        assert sink.send(BUCKET, EVENTS).ok
        api_server.drip(0.001)
        assert sink.send(BUCKET, EVENTS).ok
    finally:
        sink.close()
    assert len(api_server.events) == 2 * len(EVENTS)


def test_deadline_does_not_cut_healthy_requests(
    sink: InitialStateSink, api_server: ApiServer
) -> None:
    """Back-to-back requests, each far inside the deadline, all succeed on one connection."""
    sink.timeout = 0.5
    results = [sink.send(BUCKET, EVENTS) for _ in range(50)]
    assert all(r.ok for r in results)
    assert len({r.conn for r in api_server.requests}) == 1


def test_unencodable_batch_is_a_result_not_an_exception(sink: InitialStateSink) -> None:
    """A batch that cannot be encoded as JSON is answered BAD, never raised across the thread."""
    result = sink.send(BUCKET, [("k", float("nan"), 1.0)])
    assert result.outcome is Outcome.BAD


# ---- secrets ----------------------------------------------------------------------------


def test_repr_hides_key() -> None:
    """repr(sink) shows the address and a redacted key only."""
    sink = InitialStateSink("https://groker.init.st", LONG_KEY)
    try:
        text = repr(sink)
    finally:
        sink.close()
    assert "groker.init.st" in text and "ist_…a1b2" in text
    assert_key_hidden(text, LONG_KEY)


def test_key_never_logged(any_key_server: ApiServer, caplog: pytest.LogCaptureFixture) -> None:
    """At DEBUG level (including urllib3's log) neither success nor failures print the key."""
    sink = InitialStateSink(any_key_server.url, LONG_KEY, timeout=2.0)
    with caplog.at_level(logging.DEBUG):
        sink.send(BUCKET, EVENTS)
        any_key_server.fail(401)
        messages = [sink.send(BUCKET, EVENTS).message]
        any_key_server.fail(503)
        messages.append(sink.send(BUCKET, EVENTS).message)
        sink.close()
    assert_key_hidden(
        "\n".join(r.getMessage() for r in caplog.records) + "\n".join(messages), LONG_KEY
    )


def test_address_has_no_credentials(access_key: str) -> None:
    """sink.address drops user info and query, so it is safe to log and to write in spill files."""
    sink = InitialStateSink(
        f"https://user:{LONG_KEY}@groker.init.st/?accessKey={LONG_KEY}", access_key
    )
    try:
        assert sink.address == "https://groker.init.st"
    finally:
        sink.close()


def test_key_in_api_base_query_goes_in_the_header(api_server: ApiServer, access_key: str) -> None:
    """An api_base with ?accessKey= sends the key as X-IS-AccessKey, never in the request line;
    other query parameters follow every request path."""
    sink = InitialStateSink(f"{api_server.url}/?accessKey={access_key}&region=eu", "")
    try:
        assert sink.send(BUCKET, EVENTS).ok
        assert access_key not in repr(sink) and access_key not in sink.address
    finally:
        sink.close()
    assert [(r.path, r.query) for r in api_server.requests] == [
        ("/api/buckets", {"region": "eu"}),
        ("/api/events", {"region": "eu"}),
    ]
    assert all(r.headers["x-is-accesskey"] == access_key for r in api_server.requests)


def test_key_in_api_base_never_logged_at_debug(
    api_server: ApiServer, access_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With ?accessKey= and user:password@ in api_base, DEBUG logs of every logger (urllib3
    included) and every result message stay free of the key, through failures too."""
    base = api_server.url.replace("http://", f"http://user:{access_key}@")
    sink = InitialStateSink(f"{base}/?accessKey={access_key}", access_key, timeout=0.5)
    with caplog.at_level(logging.DEBUG):
        messages = [sink.send(BUCKET, EVENTS).message]
        for misbehave in (
            lambda: api_server.fail(503),
            lambda: api_server.fail(401),
            lambda: api_server.drip(0.2),
            api_server.reset,
        ):
            misbehave()
            messages.append(sink.send(BUCKET, EVENTS).message)
        messages.append(repr(sink))
        api_server.stop()
        messages.append(sink.send(BUCKET, EVENTS).message)
        sink.close()
    assert len(caplog.records) > 3  # urllib3 did log each request
    text = "\n".join(r.getMessage() for r in caplog.records) + "\n".join(messages)
    assert access_key not in text


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://groker.init.st", "https://groker.init.st"),
        ("https://groker.init.st/", "https://groker.init.st"),
        (
            "https://user:pass@groker.init.st/api/?accessKey=k&x=1#frag",
            "https://groker.init.st/api",
        ),
        ("http://127.0.0.1:8080/base/", "http://127.0.0.1:8080/base"),
        ("http://:pw@host:99", "http://host:99"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ],
)
def test_public_address(url: str, expected: str) -> None:
    """public_address strips credentials, query, fragment; keeps scheme, host, port and path."""
    assert public_address(url) == expected


# ---- header parsing ---------------------------------------------------------------------


def test_key_echoed_by_the_server_is_scrubbed(
    sink: InitialStateSink, api_server: ApiServer, access_key: str
) -> None:
    """A receiver that echoes the key in its error body never gets it into a message."""
    api_server.fail(400, body={"message": f"bad request from key {access_key}"})
    result = sink.send(BUCKET, [("k", 1, 1.0)])
    assert result.outcome is Outcome.BAD
    assert access_key not in result.message
    api_server.fail(503, body={"message": f"overloaded for {access_key}"})
    assert access_key not in sink.send(BUCKET, [("k", 1, 1.0)]).message


# ---- TLS --------------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) for 127.0.0.1, made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make test certificates")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=isstreamer test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=tmp_path,
    )
    _openssl(
        "req", *ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1", cwd=tmp_path
    )
    (tmp_path / "ext").write_text("subjectAltName=IP:127.0.0.1\nauthorityKeyIdentifier=keyid\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
        cwd=tmp_path,
    )
    return tmp_path / "ca.pem", tmp_path / "srv.pem", tmp_path / "srv.key"


class _TLSHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append((id(self.connection), self.path, body))  # type: ignore[attr-defined]
        self.server.hosts.add(self.headers["Host"])  # type: ignore[attr-defined]
        self.send_response(201 if self.path == "/api/buckets" else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def tls_server(tls_files: tuple[Path, Path, Path]) -> Iterator[http.server.ThreadingHTTPServer]:
    """An HTTPS receiver on 127.0.0.1 with a certificate signed by the test CA."""
    _, cert, key = tls_files
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TLSHandler)
    server.daemon_threads = True
    server.seen = []  # type: ignore[attr-defined]
    server.hosts = set()  # type: ignore[attr-defined]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_https_verified_with_the_sessions_ca_bundle(
    tls_server: http.server.ThreadingHTTPServer, tls_files: tuple[Path, Path, Path]
) -> None:
    """Over HTTPS with the session's CA bundle, every batch is delivered on one verified,
    kept-alive TLS connection."""
    session = requests.Session()
    session.mount("https://", LeanAdapter())
    session.verify = str(tls_files[0])
    sink = InitialStateSink(f"https://127.0.0.1:{tls_server.server_port}", "k", session=session)
    try:
        results = [sink.send(BUCKET, EVENTS) for _ in range(3)]
    finally:
        sink.close()
    assert all(r.ok for r in results)
    seen = tls_server.seen  # type: ignore[attr-defined]
    assert [path for _, path, _ in seen] == ["/api/buckets"] + ["/api/events"] * 3
    assert len({conn for conn, _, _ in seen}) == 1
    assert json.loads(seen[-1][2]) == [{"key": k, "value": v, "epoch": e} for k, v, e in EVENTS]


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_https_ca_bundle_from_the_environment(
    tls_server: http.server.ThreadingHTTPServer,
    tls_files: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    """REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE names the CAs to trust, as for requests.post()."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv(variable, str(tls_files[0]))
    sink = InitialStateSink(f"https://127.0.0.1:{tls_server.server_port}", "k", timeout=5)
    try:
        results = [sink.send(BUCKET, EVENTS) for _ in range(2)]
    finally:
        sink.close()
    assert all(r.ok for r in results)
    assert len(tls_server.seen) == 3  # type: ignore[attr-defined]


def test_https_unknown_ca_is_refused(tls_server: http.server.ThreadingHTTPServer) -> None:
    """A certificate no trusted CA signed is refused: RETRY naming the TLS cause, nothing sent."""
    sink = InitialStateSink(f"https://127.0.0.1:{tls_server.server_port}", "k", timeout=5)
    try:
        result = sink.send(BUCKET, EVENTS)
    finally:
        sink.close()
    assert result.outcome is Outcome.RETRY and "TLS certificate rejected" in result.message
    assert tls_server.seen == []  # type: ignore[attr-defined]


class ConnectProxy:
    """An HTTPS proxy: answers CONNECT by piping bytes to the target; keeps each target."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.tunnels: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            head = b""
            while b"\r\n\r\n" not in head:
                head += client.recv(4096)
            target = head.split(b" ")[1]
            self.tunnels.append(target)
            host, port = target.rsplit(b":", 1)
            upstream = socket.create_connection((host.decode(), int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            sink.close()

    def close(self) -> None:
        self.listener.close()


def test_https_through_a_connect_proxy(
    tls_server: http.server.ThreadingHTTPServer,
    tls_files: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With HTTPS_PROXY set, batches travel through one CONNECT tunnel to the receiver, the
    certificate verified end to end and Host naming the receiver, not the proxy."""
    proxy = ConnectProxy()
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    session = requests.Session()
    session.mount("https://", LeanAdapter())
    session.verify = str(tls_files[0])
    address = f"127.0.0.1:{tls_server.server_port}"
    sink = InitialStateSink(f"https://{address}", "k", session=session)
    try:
        results = [sink.send(BUCKET, EVENTS) for _ in range(3)]
    finally:
        sink.close()
        proxy.close()
    assert all(r.ok for r in results)
    assert proxy.tunnels == [address.encode()]
    assert tls_server.hosts == {address}  # type: ignore[attr-defined]
    assert len(tls_server.seen) == 4  # type: ignore[attr-defined]
