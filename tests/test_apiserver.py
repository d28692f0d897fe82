"""The test server itself: it speaks the events API, records, and fails on command."""

from __future__ import annotations

import errno
import gzip
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from apiserver import ApiServer

EVENTS = [
    {"key": "temp", "value": 21.5, "epoch": 1700000000.25},
    {"key": "door", "value": "open", "epoch": 1700000001},
]


def post_events(
    server: ApiServer,
    key: str,
    events: Any = EVENTS,
    bucket: str = "b1",
    session: Any = requests,
    **kwargs: Any,
) -> requests.Response:
    headers = {
        "X-IS-AccessKey": key,
        "X-IS-BucketKey": bucket,
        "Accept-Version": "~0",
        **kwargs.pop("headers", {}),
    }
    kwargs.setdefault("json", events)
    return session.post(f"{server.url}/api/events", headers=headers, timeout=5, **kwargs)


def test_records_events_with_bucket(api_server: ApiServer, access_key: str) -> None:
    """An accepted batch answers 204 and its events are recorded with their bucket key."""
    assert post_events(api_server, access_key).status_code == 204
    assert api_server.events == [dict(e, bucket="b1") for e in EVENTS]
    assert api_server.events_for("b1") == api_server.events and api_server.events_for("x") == []
    req = api_server.requests[0]
    assert (req.method, req.path, req.status, req.json) == ("POST", "/api/events", 204, EVENTS)
    assert req.headers["x-is-bucketkey"] == "b1" and req.headers["accept-version"] == "~0"


def test_single_object_is_one_event(api_server: ApiServer, access_key: str) -> None:
    """A single JSON object (not an array) is accepted as one event."""
    assert post_events(api_server, access_key, events=EVENTS[0]).status_code == 204
    assert api_server.events == [dict(EVENTS[0], bucket="b1")]


def test_bucket_created_then_exists(api_server: ApiServer, access_key: str) -> None:
    """POST /api/buckets answers 201 for a new bucket and 204 when it exists."""

    def create() -> int:
        return requests.post(
            f"{api_server.url}/api/buckets",
            timeout=5,
            json={"bucketKey": "b1", "bucketName": "Kitchen"},
            headers={"X-IS-AccessKey": access_key},
        ).status_code

    assert (create(), create()) == (201, 204)
    assert api_server.buckets == {"b1": "Kitchen"}


def test_bad_or_missing_access_key_is_401(api_server: ApiServer) -> None:
    """A wrong or missing access key gets 401 and nothing is recorded as an event."""
    assert post_events(api_server, "wrong").status_code == 401
    assert requests.post(f"{api_server.url}/api/events", json=EVENTS, timeout=5).status_code == 401
    assert api_server.events == [] and [r.status for r in api_server.requests] == [401, 401]


def test_bad_requests_are_400_with_message(api_server: ApiServer, access_key: str) -> None:
    """Invalid JSON or a missing bucket key gets 400 with a JSON message."""
    bad_json = post_events(api_server, access_key, json=None, data=b"[{")
    no_bucket = requests.post(
        f"{api_server.url}/api/events",
        json=EVENTS,
        timeout=5,
        headers={"X-IS-AccessKey": access_key},
    )
    for response in (bad_json, no_bucket):
        assert response.status_code == 400 and response.json()["message"]
    assert api_server.events == []


def test_fail_429_with_retry_after_then_success(api_server: ApiServer, access_key: str) -> None:
    """fail() answers the next request with its status and headers, then service resumes."""
    api_server.fail(429, headers={"Retry-After": "2"})
    first = post_events(api_server, access_key)
    assert first.status_code == 429 and first.headers["Retry-After"] == "2"
    assert api_server.events == []  # a failed request's events are not recorded
    assert post_events(api_server, access_key).status_code == 204
    assert len(api_server.events) == 2 and [r.status for r in api_server.requests] == [429, 204]


def test_fail_until_clear_and_per_path(api_server: ApiServer, access_key: str) -> None:
    """fail(times=None) lasts until clear() and only affects its own path."""
    api_server.fail(503, times=None)
    assert [post_events(api_server, access_key).status_code for _ in range(3)] == [503] * 3
    bucket = requests.post(
        f"{api_server.url}/api/buckets",
        json={"bucketKey": "b1"},
        timeout=5,
        headers={"X-IS-AccessKey": access_key},
    )
    assert bucket.status_code == 201
    api_server.clear()
    assert post_events(api_server, access_key).status_code == 204


def test_hang_released_by_clear(api_server: ApiServer, access_key: str) -> None:
    """A hung request gets no answer until clear(), then its connection closes."""
    api_server.hang()
    errors: list[Exception] = []

    def client() -> None:
        try:
            post_events(api_server, access_key)
        except requests.ConnectionError as exc:
            errors.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    assert api_server.wait_for_requests(1)
    assert thread.is_alive() and api_server.requests[0].status == 0
    api_server.clear()
    thread.join(5)
    assert not thread.is_alive() and len(errors) == 1
    assert post_events(api_server, access_key).status_code == 204


def test_hang_does_not_block_stop(access_key: str) -> None:
    """stop() returns promptly while a request hangs, and the client sees the connection drop."""
    server = ApiServer().start()
    server.hang(times=None)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/api/events", body=b"[]", headers={"X-IS-AccessKey": access_key})
    assert server.wait_for_requests(1)
    server.stop()
    with pytest.raises(ConnectionError):
        conn.getresponse()
    conn.close()


def test_reset_aborts_connection(api_server: ApiServer, access_key: str) -> None:
    """reset() reads the request, then aborts the connection with a TCP RST and no answer."""
    api_server.reset()
    conn = http.client.HTTPConnection("127.0.0.1", api_server.port, timeout=5)
    conn.request(
        "POST",
        "/api/events",
        body=json.dumps(EVENTS),
        headers={"X-IS-AccessKey": access_key, "X-IS-BucketKey": "b1"},
    )
    with pytest.raises(ConnectionResetError) as caught:
        conn.getresponse()
    conn.close()
    assert caught.value.errno == errno.ECONNRESET  # a real RST, not a polite close (FIN)
    assert api_server.events == [] and api_server.requests[0].json == EVENTS


def test_stop_refuses_then_start_on_same_port(api_server: ApiServer, access_key: str) -> None:
    """While stopped, connecting is refused at once; start() comes back on the same port."""
    session = requests.Session()
    assert post_events(api_server, access_key, session=session).status_code == 204
    port = api_server.port
    api_server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with pytest.raises(requests.ConnectionError):
        post_events(api_server, access_key, session=session)
    api_server.start()
    assert api_server.port == port
    assert post_events(api_server, access_key, session=session).status_code == 204
    session.close()


def test_body_over_max_is_413_and_connection_survives(access_key: str) -> None:
    """A body over max_body gets 413 (the client can read it) and keep-alive still works."""
    with ApiServer(max_body=1000) as server, requests.Session() as session:
        big = [{"key": "k", "value": "x" * 2000, "epoch": 1}]
        assert post_events(server, access_key, events=big, session=session).status_code == 413
        assert post_events(server, access_key, session=session).status_code == 204
        assert server.events == [dict(e, bucket="b1") for e in EVENTS]
        assert server.requests[0].conn == server.requests[1].conn


def test_keep_alive_shares_connection(api_server: ApiServer, access_key: str) -> None:
    """Two requests over one requests.Session share `conn`; another session gets a new one."""
    with requests.Session() as session:
        post_events(api_server, access_key, session=session)
        post_events(api_server, access_key, session=session)
    with requests.Session() as other:
        post_events(api_server, access_key, session=other)
    first, second, third = (r.conn for r in api_server.requests)
    assert first == second != third


def test_url_variant(api_server: ApiServer, access_key: str) -> None:
    """GET /api/events?accessKey=&bucketKey=&k=v records each extra param with server time."""
    before = time.time()
    response = requests.get(
        f"{api_server.url}/api/events",
        timeout=5,
        params={"accessKey": access_key, "bucketKey": "b2", "temp": "21.5", "door": "open"},
    )
    assert response.status_code == 204
    assert [(e["key"], e["value"], e["bucket"]) for e in api_server.events] == [
        ("temp", "21.5", "b2"),
        ("door", "open", "b2"),
    ]
    assert all(before <= e["epoch"] <= time.time() for e in api_server.events)


def test_gzip_body(api_server: ApiServer, access_key: str) -> None:
    """A Content-Encoding: gzip body is decompressed; the raw body is kept as sent."""
    body = gzip.compress(json.dumps(EVENTS).encode())
    response = post_events(
        api_server,
        access_key,
        json=None,
        data=body,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.status_code == 204
    assert api_server.events == [dict(e, bucket="b1") for e in EVENTS]
    assert api_server.requests[0].body == body and api_server.requests[0].json == EVENTS


def test_delay_then_normal_answer(api_server: ApiServer, access_key: str) -> None:
    """delay() holds the answer for the given time, then answers normally."""
    api_server.delay(0.05)
    started = time.monotonic()
    assert post_events(api_server, access_key).status_code == 204
    assert time.monotonic() - started >= 0.05 and len(api_server.events) == 2


def test_any_key_when_access_keys_is_none() -> None:
    """access_keys=None accepts any key."""
    with ApiServer(access_keys=None) as server:
        assert post_events(server, "whatever").status_code == 204


def test_drip_sends_the_answer_byte_by_byte(api_server: ApiServer, access_key: str) -> None:
    """drip() answers normally, but in small pieces: each read gets a byte, the whole is late."""
    api_server.drip(0.002)
    with socket.create_connection(("127.0.0.1", api_server.port), timeout=5) as sock:
        body = json.dumps(EVENTS).encode()
        sock.sendall(
            b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"X-IS-AccessKey: {access_key}\r\nX-IS-BucketKey: b1\r\n".encode()
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        pieces = []
        while True:
            piece = sock.recv(4096)
            if not piece:
                break
            pieces.append(piece)
    answer = b"".join(pieces)
    assert answer.startswith(b"HTTP/1.") and b" 204 " in answer.split(b"\r\n")[0]
    assert len(pieces) > 10  # many reads, each a small part of the answer
    assert len(api_server.events) == 2


def test_trickle_reads_the_body_slowly_then_answers(api_server: ApiServer, access_key: str) -> None:
    """trickle() still accepts the batch, after reading its body in 1 KiB steps."""
    api_server.trickle(0.001)
    events = [{"key": f"k{i}", "value": i, "epoch": 1700000000} for i in range(200)]
    assert post_events(api_server, access_key, events).status_code == 204
    assert len(api_server.events) == 200


def test_a_given_date_header_replaces_the_servers_own(
    api_server: ApiServer, access_key: str
) -> None:
    """A Date passed to fail() is the only Date of the answer (a server clock far from ours)."""
    stamp = "Wed, 01 Jan 2031 00:00:00 GMT"
    api_server.fail(429, headers={"Retry-After": "5", "Date": stamp})
    with socket.create_connection(("127.0.0.1", api_server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\n[]"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            piece = sock.recv(4096)
            if not piece:
                break
            head += piece
    dates = [line for line in head.split(b"\r\n") if line.lower().startswith(b"date:")]
    assert dates == [b"Date: " + stamp.encode()]


def test_readme_example_of_testing_your_code_runs() -> None:
    """The README's "Testing your code" example runs as written and its assertions hold."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Testing your code", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "from isstreamer.testing import ApiServer" in code and "assert" in code
    exec(compile(code, "README.md (Testing your code)", "exec"), {})


def test_testing_module_is_the_tests_server_and_not_imported_by_the_library() -> None:
    """tests/apiserver.py re-exports isstreamer.testing (users get the server the tests use);
    `import isstreamer` does not load it."""
    import apiserver

    import isstreamer.testing

    assert apiserver.ApiServer is isstreamer.testing.ApiServer
    code = "import sys, isstreamer; print(sorted(m for m in sys.modules if '.testing' in m))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
