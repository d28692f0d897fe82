"""The local collector over real HTTP: ingest API, errors, read API, storage, embedded default."""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import os
import re
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
import requests

from isstreamer import Streamer
from isstreamer.collector import Collector, default_db_path, ensure_local_collector, key_file_path
from isstreamer.collector.wire import Limits

KEY = "collector-test-key"
BUCKET = "bucket-1"


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post_events(
    url: str,
    events: Any,
    bucket: str = BUCKET,
    key: str | None = KEY,
    session: Any = requests,
    **kwargs: Any,
) -> requests.Response:
    headers = {"Content-Type": "application/json", "X-IS-BucketKey": bucket, "Accept-Version": "~0"}
    if key is not None:
        headers["X-IS-AccessKey"] = key
    headers.update(kwargs.pop("headers", {}))
    data = kwargs.pop("data", None)
    if data is None:
        data = json.dumps(events)
    return session.post(url + "/api/events", data=data, headers=headers, timeout=10, **kwargs)


def read_events(url: str, bucket: str = BUCKET, **params: Any) -> list[dict[str, Any]]:
    response = requests.get(f"{url}/api/buckets/{bucket}/events", params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def read_keys(url: str, bucket: str = BUCKET) -> dict[str, dict[str, Any]]:
    response = requests.get(f"{url}/api/buckets/{bucket}/keys", timeout=10)
    assert response.status_code == 200, response.text
    return {k["key"]: k for k in response.json()}


# Whatever local_collector starts in this process is stopped after each test (conftest).
pytestmark = pytest.mark.usefixtures("stop_embedded_collectors")


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    """A collector on a free loopback port with a tmp database and a known key."""
    with Collector(tmp_path / "c.db", port=0, access_keys=[KEY]) as running:
        yield running


@pytest.fixture
def url(collector: Collector) -> str:
    """Base URL of the collector fixture."""
    return collector.url


class ServeProcess:
    """`python -m isstreamer.collector --port 0` as a subprocess; its URL comes from stdout."""

    def __init__(self, db: Path, *extra: str) -> None:
        cmd = [sys.executable, "-m", "isstreamer.collector", "--port", "0", "--db", str(db), *extra]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()  # blocks until the server is listening
        match = re.search(r"http://\S+", first)
        if not match:
            self.proc.kill()
            pytest.fail(f"no URL on the first line: {first!r} {self.proc.stdout.read()}")
        self.url = match.group(0)
        self.output = first

    def stop(self) -> int:
        """SIGTERM, then the exit code; the rest of stdout lands in .output."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        assert self.proc.stdout is not None
        self.output += self.proc.stdout.read()  # the same buffered reader that got the first line
        return self.proc.wait(20)


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[ServeProcess]:
    """A collector subprocess with key KEY; must shut down cleanly on SIGTERM."""
    server = ServeProcess(tmp_path / "sub.db", "--access-key", KEY)
    try:
        yield server
    finally:
        assert server.stop() == 0
        assert "stopped" in server.output


# --- ingest API ----------------------------------------------------------------------------


def test_create_bucket_answers_201_then_204(url: str) -> None:
    """POST /api/buckets creates a bucket (201) and answers 204 when it already exists."""
    headers = {"X-IS-AccessKey": KEY}
    body = {"bucketKey": "kitchen", "bucketName": "Kitchen"}
    first = requests.post(url + "/api/buckets", json=body, headers=headers, timeout=10)
    second = requests.post(url + "/api/buckets", json=body, headers=headers, timeout=10)
    assert (first.status_code, second.status_code) == (201, 204)
    buckets = requests.get(url + "/api/buckets", timeout=10).json()
    assert buckets == [
        {"bucketKey": "kitchen", "bucketName": "Kitchen", "events": 0, "lastEpoch": None}
    ]


def test_events_array_and_single_object(url: str) -> None:
    """An array and a single event object are both stored and answered with 204."""
    many = post_events(
        url, [{"key": "a", "value": 1, "epoch": 1_900_000_000}, {"key": "b", "value": 2}]
    )
    one = post_events(url, {"key": "a", "value": 3, "epoch": 1_900_000_001})
    assert (many.status_code, one.status_code) == (204, 204)
    assert [(e["key"], e["value"]) for e in read_events(url, key="a")] == [("a", 1), ("a", 3)]
    keys = read_keys(url)
    assert keys["a"]["count"] == 2 and keys["a"]["lastValue"] == 3 and keys["b"]["lastValue"] == 2
    assert requests.get(url + "/api/buckets", timeout=10).json()[0]["events"] == 3


BAD_EVENTS = [
    ({"key": "k", "value": None}, "value"),
    ({"key": "k", "value": [1]}, "value"),
    ({"key": "k", "value": float("nan")}, "finite"),
    ({"key": "k", "value": "x" * 2001}, "2000"),
    ({"key": "", "value": 1}, "key"),
    ({"key": "k" * 251, "value": 1}, "key"),
    ({"value": 1}, "key"),
    ({"key": "k", "value": 1, "epoch": "yesterday"}, "epoch"),
    ({"key": "k", "value": 1, "iso8601": "not a date"}, "iso8601"),
    ("just a string", "object"),
]


@pytest.mark.parametrize("bad, word", BAD_EVENTS)
def test_bad_event_gets_400_naming_it(url: str, bad: Any, word: str) -> None:
    """A rule-breaking event gets 400 naming its index; nothing of the batch is stored."""
    session = requests.Session()
    good = {"key": "good", "value": 1}
    response = post_events(url, [good, good, bad, good], session=session)
    assert response.status_code == 400
    body = response.json()
    assert body["event"] == 2 and "event 2" in body["message"] and word in body["message"]
    assert post_events(url, [good], session=session).status_code == 204  # same connection
    assert read_keys(url)["good"]["count"] == 1  # one transaction: the bad batch left nothing


def test_invalid_json_and_missing_bucket_get_400(url: str) -> None:
    """Malformed JSON, a non-event body and a missing bucket key are 400s with a message."""
    assert "JSON" in post_events(url, None, data=b"[{").json()["message"]
    assert post_events(url, None, data=b"42").status_code == 400
    assert "bucket key" in post_events(url, [{"key": "k", "value": 1}], bucket="").json()["message"]
    assert post_events(url, [{"key": "k", "value": 1}], bucket="a:b").status_code == 400


def test_wrong_or_missing_key_gets_401_and_server_keeps_serving(url: str) -> None:
    """A wrong or missing access key gets 401 for ingest and bucket creation; nothing is stored."""
    session = requests.Session()
    event = [{"key": "k", "value": 1}]
    assert post_events(url, event, key="wrong", session=session).status_code == 401
    assert post_events(url, event, key=None, session=session).status_code == 401
    denied = session.post(
        url + "/api/buckets", json={"bucketKey": "x"}, headers={"X-IS-AccessKey": "no"}, timeout=10
    )
    assert denied.status_code == 401
    assert requests.get(url + "/api/buckets", timeout=10).json() == []
    assert post_events(url, event, session=session).status_code == 204


def test_body_over_1mb_gets_413_and_server_keeps_serving(url: str) -> None:
    """A body over 1 MB gets 413 (also once gunzipped); the same connection then works."""
    session = requests.Session()
    big = [{"key": "k", "value": "x" * 1000, "epoch": 1_900_000_000 + i} for i in range(1100)]
    assert post_events(url, big, session=session).status_code == 413
    bomb = gzip.compress(json.dumps(big).encode())
    assert len(bomb) < 1024 * 1024
    assert (
        post_events(
            url, None, data=bomb, session=session, headers={"Content-Encoding": "gzip"}
        ).status_code
        == 413
    )
    assert post_events(url, big[:500], session=session).status_code == 204
    assert read_keys(url)["k"]["count"] == 500


def test_gzip_body(url: str) -> None:
    """A gzip-compressed body (Content-Encoding: gzip) is accepted; broken gzip is a 400."""
    body = gzip.compress(json.dumps([{"key": "z", "value": 7}]).encode())
    assert (
        post_events(url, None, data=body, headers={"Content-Encoding": "gzip"}).status_code == 204
    )
    assert read_keys(url)["z"]["lastValue"] == 7
    assert (
        post_events(url, None, data=b"not gzip", headers={"Content-Encoding": "gzip"}).status_code
        == 400
    )


def test_url_variant_get_and_post(url: str) -> None:
    """GET and POST /api/events?accessKey=&bucketKey=&k=v store typed values; a bad key is 401."""
    got = requests.get(
        url + "/api/events",
        params={
            "accessKey": KEY,
            "bucketKey": "u",
            "temp": "21.5",
            "count": "3",
            "door": "open",
            "on": "true",
        },
        timeout=10,
    )
    posted = requests.post(
        url + "/api/events", params={"accessKey": KEY, "bucketKey": "u", "temp": "22"}, timeout=10
    )
    denied = requests.get(
        url + "/api/events", params={"accessKey": "no", "bucketKey": "u", "temp": "1"}, timeout=10
    )
    assert (got.status_code, posted.status_code, denied.status_code) == (204, 204, 401)
    keys = read_keys(url, "u")
    assert {k: v["lastValue"] for k, v in keys.items()} == {
        "count": 3,
        "door": "open",
        "on": True,
        "temp": 22,
    }
    assert [e["value"] for e in read_events(url, "u", key="temp")] == [21.5, 22]


def test_isstreamer_2_wire_format(url: str) -> None:
    """Requests shaped exactly like ISStreamer 2.0.0's (http.client, str body, its headers) work."""
    host, port = url[len("http://") :].split(":")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "PyStreamer v2.0.0",
        "Accept-Version": "<=0.0.4",
        "X-IS-AccessKey": KEY,
        "X-IS-BucketKey": "legacy",
    }
    bodies = [
        ("/api/buckets", {"bucketKey": "legacy", "bucketName": "Legacy"}, 201),
        ("/api/events", [{"key": "temp", "value": 21.5, "epoch": time.time()}], 204),
        ("/api/events", [{"key": 7, "value": "seven", "epoch": time.time()}], 204),
    ]
    for path, contents, status in bodies:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("POST", path, json.dumps(contents), headers)
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.status == status
    assert {k: v["lastValue"] for k, v in read_keys(url, "legacy").items()} == {
        "7": "seven",
        "temp": 21.5,
    }


# --- read API and storage ------------------------------------------------------------------


def test_value_types_round_trip(url: str) -> None:
    """bool, int, float, str (unicode too) and large ints come back with their JSON types."""
    values = [
        True,
        False,
        0,
        1,
        -7,
        2**53 + 1,
        1.0,
        0.1,
        -2.5e-7,
        1e300,
        "",
        "héllo ☃",
        "1",
        "true",
    ]
    events = [{"key": "v", "value": v, "epoch": 1_900_000_000 + i} for i, v in enumerate(values)]
    assert post_events(url, events).status_code == 204
    back = [e["value"] for e in read_events(url, key="v")]
    assert back == values
    assert [type(v) for v in back] == [type(v) for v in values]
    assert read_keys(url)["v"]["lastValue"] == "true"


def test_timestamps_epoch_iso8601_and_server_time(url: str) -> None:
    """epoch and iso8601 are honoured; no timestamp or one over ten years old means server time."""
    before = time.time()
    events = [
        {"key": "t", "value": 1, "epoch": 1_900_000_000.25},
        {"key": "t", "value": 2, "iso8601": "2030-03-17T17:46:40.5Z"},
        {"key": "t", "value": 3},
        {"key": "t", "value": 4, "epoch": 1},
    ]
    assert post_events(url, events).status_code == 204
    got = {e["value"]: e["epoch"] for e in read_events(url, key="t")}
    assert got[1] == 1_900_000_000.25 and got[2] == 1_900_000_000.5
    assert before <= got[3] <= time.time() and before <= got[4] <= time.time()


def test_read_api_filters_limits_and_404(url: str) -> None:
    """events honours key/since/until/limit (newest N, oldest first); unknown buckets are 404."""
    events = [
        {"key": "k" if i % 2 else "j", "value": i, "epoch": 1_900_000_000 + i} for i in range(20)
    ]
    assert post_events(url, events).status_code == 204
    assert [e["value"] for e in read_events(url, key="k", limit=3)] == [15, 17, 19]
    assert [
        e["value"] for e in read_events(url, since=1_900_000_004, until="2030-03-17T17:46:46Z")
    ] == [4, 5, 6]
    assert [e["key"] for e in read_events(url, limit=2)] == ["j", "k"]
    assert read_events(url, key="nope") == []
    assert requests.get(url + "/api/buckets/nope/keys", timeout=10).status_code == 404
    assert requests.get(url + "/api/buckets/nope/events", timeout=10).status_code == 404
    assert (
        requests.get(url + f"/api/buckets/{BUCKET}/events?limit=0", timeout=10).status_code == 400
    )
    assert (
        requests.get(url + f"/api/buckets/{BUCKET}/events?since=soon", timeout=10).status_code
        == 400
    )


def test_data_survives_restart(tmp_path: Path) -> None:
    """Stopping and starting a collector on the same database keeps buckets, keys and events."""
    db = tmp_path / "restart.db"
    with Collector(db, port=0, access_keys=[KEY]) as first:
        assert (
            post_events(first.url, [{"key": "k", "value": i} for i in range(50)]).status_code == 204
        )
        port = first.port
    with Collector(db, port=port, access_keys=[KEY]) as second:
        assert read_keys(second.url)["k"]["count"] == 50
        assert post_events(second.url, [{"key": "k", "value": 50}]).status_code == 204
        assert [e["value"] for e in read_events(second.url, key="k", limit=100)] == list(range(51))


def test_retention_deletes_old_rows_at_start_and_periodically(tmp_path: Path) -> None:
    """With retention_days, events older than that go at start and on every later run."""
    db = tmp_path / "retention.db"
    day = 86400
    now = time.time()
    with Collector(db, port=0, access_keys=[KEY]) as plain:
        old = [{"key": "k", "value": i, "epoch": now - 3 * day - i} for i in range(10)]
        fresh = [
            {"key": "k", "value": 100, "epoch": now},
            {"key": "gone", "value": 1, "epoch": now - 5 * day},
        ]
        assert post_events(plain.url, old + fresh).status_code == 204
    with Collector(db, port=0, access_keys=[KEY], retention_days=2) as kept:
        wait_for(lambda: "gone" not in read_keys(kept.url), what="purge at start")
        assert [e["value"] for e in read_events(kept.url, key="k")] == [100]
    kept = Collector(db, port=0, access_keys=[KEY], retention_days=2)
    kept.retention_interval_s = 0.05
    with kept:
        assert (
            post_events(kept.url, [{"key": "late", "value": 1, "epoch": now - 4 * day}]).status_code
            == 204
        )
        wait_for(lambda: "late" not in read_keys(kept.url), what="periodic purge")
        assert read_keys(kept.url)["k"]["count"] == 1


def test_reads_need_the_key_when_exposed(tmp_path: Path) -> None:
    """Bound beyond loopback, reads need the key (header or ?accessKey=); pages stay public."""
    with Collector(tmp_path / "exposed.db", host="0.0.0.0", port=0, access_keys=[KEY]) as exposed:
        local = f"http://127.0.0.1:{exposed.port}"
        assert not exposed.reads_open
        assert requests.get(local + "/api/buckets", timeout=10).status_code == 401
        assert (
            requests.get(
                local + "/api/buckets", headers={"X-IS-AccessKey": KEY}, timeout=10
            ).status_code
            == 200
        )
        assert requests.get(local + f"/api/buckets?accessKey={KEY}", timeout=10).status_code == 200
        assert (
            requests.get(local + "/api/buckets/b/keys?accessKey=no", timeout=10).status_code == 401
        )
        assert requests.get(local + "/", timeout=10).status_code == 200


def test_reads_refuse_a_foreign_host_header_without_the_key(url: str) -> None:
    """A page reaching 127.0.0.1 under another name (DNS rebinding) needs the key to read."""
    assert post_events(url, [{"key": "k", "value": 1}]).status_code == 204
    for host in ("localhost", "127.0.0.1:8080", "[::1]:8080", "app.localhost"):
        assert (
            requests.get(url + "/api/buckets", headers={"Host": host}, timeout=10).status_code
            == 200
        )
    evil = {"Host": "attacker.example:8080"}
    assert requests.get(url + "/api/buckets", headers=evil, timeout=10).status_code == 401
    assert (
        requests.get(url + f"/api/buckets/{BUCKET}/keys", headers=evil, timeout=10).status_code
        == 401
    )
    keyed = dict(evil, **{"X-IS-AccessKey": KEY})
    assert requests.get(url + "/api/buckets", headers=keyed, timeout=10).status_code == 200


def test_dashboard_files_are_served(url: str) -> None:
    """The pages and the vendored uPlot are served locally with the right types; no traversal."""
    post_events(url, [{"key": "k", "value": 1}], bucket="any/key")
    index = requests.get(url + "/", timeout=10)
    page = requests.get(url + "/buckets/any%2Fkey", timeout=10)
    script = requests.get(url + "/static/uPlot.iife.min.js", timeout=10)
    assert index.headers["Content-Type"].startswith("text/html") and "Buckets" in index.text
    assert page.status_code == 200 and "uPlot" in page.text
    assert (
        script.headers["Content-Type"].startswith("text/javascript")
        and len(script.content) > 10_000
    )
    assert requests.get(url + "/static/..%2Fstore.py", timeout=10).status_code == 404
    assert requests.get(url + "/static/nope.js", timeout=10).status_code == 404
    assert "https://" not in index.text + page.text  # no CDN: a Pi is often offline


# --- Streamers, concurrency, subprocess ----------------------------------------------------


def stream(
    url: str, bucket: str, events: list[tuple[str, Any]], key: str = KEY, **kwargs: Any
) -> dict[str, Any]:
    """Log ``events`` with a Streamer into ``bucket``; return its stats after close()."""
    streamer = Streamer(
        bucket_name=bucket.title(), bucket_key=bucket, access_key=key, api_base=url, **kwargs
    )
    for key, value in events:
        streamer.log(key, value)
    assert streamer.close(timeout=30)
    return streamer.stats()


def test_streamer_into_collector_subprocess_keeps_types(serve_process: ServeProcess) -> None:
    """The project's Streamer streams into a collector subprocess; every value keeps its type."""
    values: list[Any] = [
        True,
        False,
        0,
        42,
        -3,
        2**40,
        3.5,
        -0.001,
        1e-9,
        "text",
        "",
        "ünïcode",
        "42",
    ]
    events = [(f"key{i % 4}", v) for i, v in enumerate(values)]
    stats = stream(serve_process.url, "typed", events, buffer_size=5)
    assert stats["sent"] == len(values)
    got = read_events(serve_process.url, "typed", limit=1000)
    assert [(e["key"], e["value"]) for e in got] == events
    assert [type(e["value"]) for e in got] == [type(v) for v in values]
    buckets = requests.get(serve_process.url + "/api/buckets", timeout=10).json()
    assert buckets[0]["bucketName"] == "Typed" and buckets[0]["events"] == len(values)


def test_ten_concurrent_streamers_each_deliver_exactly_their_events(url: str) -> None:
    """Ten Streamers in parallel threads each deliver exactly their own events, once."""
    per_streamer = 500
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            stream(
                url,
                f"s{n}",
                [(f"k{i % 3}", n * 10_000 + i) for i in range(per_streamer)],
                buffer_size=50,
            )
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    for n in range(10):
        got = sorted(e["value"] for e in read_events(url, f"s{n}", limit=10_000))
        assert got == [n * 10_000 + i for i in range(per_streamer)]


@pytest.mark.slow
def test_sigterm_stops_the_subprocess_gracefully(tmp_path: Path) -> None:
    """`python -m isstreamer.collector` prints a new key once (kept 0600) and exits 0 on SIGTERM."""
    db = tmp_path / "gen" / "collector.db"
    first = ServeProcess(db)
    key = key_file_path(db).read_text().strip()
    assert post_events(first.url, [{"key": "k", "value": 1}], key=key).status_code == 204
    assert first.stop() == 0
    assert key in first.output and stat.S_IMODE(os.stat(key_file_path(db)).st_mode) == 0o600
    second = ServeProcess(db)
    assert read_keys(second.url)["k"]["count"] == 1
    assert second.stop() == 0
    assert key not in second.output  # printed on first start only


# --- embedded default ----------------------------------------------------------------------


def test_ensure_local_collector_starts_one_then_reuses_it() -> None:
    """With nothing listening it starts a collector in-process on the default db, then reuses it."""
    port = free_port()
    base, key = ensure_local_collector(port=port)
    assert base == f"http://127.0.0.1:{port}"
    assert key_file_path(default_db_path()).read_text().strip() == key
    assert str(default_db_path()).startswith(os.environ["XDG_DATA_HOME"])
    assert ensure_local_collector(port=port) == (base, key)
    stream(base, "embedded", [("x", 1), ("x", 2)], key=key)
    assert read_keys(base, "embedded")["x"]["count"] == 2


def test_ensure_local_collector_reuses_a_running_collector() -> None:
    """A collector already answering on the port (another process) is reused with the stored key."""
    port = free_port()
    db = default_db_path()
    proc = subprocess.Popen(
        [sys.executable, "-m", "isstreamer.collector", "--port", str(port), "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and "listening" in proc.stdout.readline()
        base, key = ensure_local_collector(port=port)
        assert key == key_file_path(db).read_text().strip()
        assert post_events(base, [{"key": "r", "value": 2}], key=key).status_code == 204
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        # It was the subprocess that answered: with it gone, nothing listens on the port.
        with pytest.raises(requests.ConnectionError):
            requests.get(base + "/api/health", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_ensure_local_collector_refuses_a_foreign_server() -> None:
    """Something that is not a collector on the port is reported, not silently replaced."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def answer() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")

        threading.Thread(target=answer, daemon=True).start()
        with pytest.raises(RuntimeError, match="not as an isstreamer collector"):
            ensure_local_collector(port=port)


@pytest.mark.slow
def test_metrics_once_without_a_key_delivers_to_an_in_process_collector() -> None:
    """`isstreamer metrics --once` with no key or api_base streams into a collector it starts,
    and, since that collector ends with it, says where the data went instead of "open"."""
    pytest.importorskip("isstreamer.cli.metrics", reason="the metrics command is not in this tree")
    port = free_port()
    cmd = [sys.executable, "-m", "isstreamer", "metrics", "--once"]
    env = dict(os.environ, ISSTREAMER_COLLECTOR_PORT=str(port))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "open http" not in done.stderr
    assert (
        str(default_db_path()) in done.stderr and f"isstreamer serve --port {port}" in done.stderr
    )
    # The collector lived inside that process; its database (the default one) holds the data.
    with Collector(default_db_path(), port=0) as collector:
        buckets = requests.get(collector.url + "/api/buckets", timeout=10).json()
        assert [b["bucketKey"][:8] for b in buckets] == ["metrics-"]
        assert buckets[0]["events"] >= 10
        keys = read_keys(collector.url, buckets[0]["bucketKey"])
    assert any("cpu" in key for key in keys) and any("mem" in key for key in keys)


# --- abuse: odd values, framing, slow and too many clients ------------------------------------


def post_raw_json(url: str, text: str) -> requests.Response:
    """POST ``text`` as it is: JSON escapes such as \\udcff reach the server unchanged."""
    return post_events(url, None, data=text.encode("ascii"))


@pytest.mark.parametrize(
    "text, index, words",
    [
        ('[{"key":"a","value":1},{"key":"b","value":1e999}]', 1, "finite"),
        ('[{"key":"a","value":1},{"key":"b","value":' + "9" * 400 + "}]", 1, "too large"),
        ('[{"key":"a","value":1},{"key":"b","value":' + "9" * 5000 + "}]", 1, "finite|too large"),
        ('[{"key":"a","value":"' + "x" * 2001 + '"}]', 0, "2000"),
        ('[{"key":"' + "k" * 251 + '","value":1}]', 0, "250"),
        ('[{"key":"a","value":1,"epoch":1e300}]', 0, "epoch"),
        ('[{"key":"a","value":1,"epoch":NaN}]', 0, "epoch"),
        ('[{"key":"a","value":1,"epoch":' + "9" * 5000 + "}]", 0, "epoch"),
        ('[{"key":' + "9" * 5000 + ',"value":1}]', 0, "key"),
        ('[{"key":"a","value":[1]}]', 0, "value"),
    ],
    ids=[
        "inf",
        "400-digits",
        "5000-digits",
        "long-string",
        "long-key",
        "far-epoch",
        "nan-epoch",
        "huge-epoch",
        "huge-int-key",
        "list-value",
    ],
)
def test_values_the_store_cannot_take_get_400_naming_the_event(
    url: str, text: str, index: int, words: str
) -> None:
    """Each value SQLite cannot store is refused with 400 naming its event, never a 500."""
    response = post_raw_json(url, text)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["event"] == index and f"event {index}" in body["message"]
    assert re.search(words, body["message"])  # 5,000 digits: "finite" from Python 3.11 on
    assert len(response.content) < 2000  # a huge key is not echoed back whole
    assert post_events(url, [{"key": "after", "value": 1}]).status_code == 204


def test_surrogates_big_ints_and_old_epochs_are_stored(url: str) -> None:
    """Lone surrogates become U+FFFD, ints beyond int64 floats, ancient epochs the server time."""
    text = (
        '[{"key":"caf\\udcff","value":"x\\ud800y","epoch":1700000000},'
        '{"key":"big","value":' + str(2**70) + ',"epoch":1700000001},'
        '{"key":"pair\\ud83d\\ude00","value":-' + str(2**64) + ',"epoch":1700000002},'
        '{"key":"old","value":1,"epoch":-1e300}]'
    )
    before = time.time()
    assert post_raw_json(url, text).status_code == 204
    got = {e["key"]: e for e in read_events(url)}
    assert got["caf\ufffd"]["value"] == "x\ufffdy"
    assert got["big"]["value"] == float(2**70) and isinstance(got["big"]["value"], float)
    assert got["pair\U0001f600"]["value"] == -float(2**64)
    assert got["old"]["epoch"] >= before
    created = requests.post(
        url + "/api/buckets",
        data=b'{"bucketKey":"b\\udcff","bucketName":"n\\udcff"}',
        headers={"X-IS-AccessKey": KEY, "Content-Type": "application/json"},
        timeout=10,
    )
    assert created.status_code == 201 and created.json()["bucketName"] == "n\ufffd"


def test_streamer_surrogate_value_reaches_the_collector(url: str) -> None:
    """What `isstreamer log k $'caf\\xff'` produces is stored, not answered 500 forever."""
    from isstreamer.events import make_event

    key, value, _ = make_event("word\udcff", "caf\udcff")
    stats = stream(url, "odd", [(key, value)])
    assert stats["sent"] == 1
    assert read_events(url, "odd")[0] == {
        "key": "word\ufffd",
        "value": "caf\ufffd",
        "epoch": pytest.approx(time.time(), abs=60),
    }


def raw_exchange(url: str, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        conn.sendall(data)
        chunks = []
        while True:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def ingest_head(length_lines: str) -> bytes:
    return (
        f"POST /api/events HTTP/1.1\r\nHost: localhost\r\nX-IS-AccessKey: {KEY}\r\n"
        f"X-IS-BucketKey: {BUCKET}\r\nContent-Type: application/json\r\n{length_lines}\r\n"
    ).encode()


# A second request hidden in the body: a server that misreads the length would answer it too.
SMUGGLED = b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n"


@pytest.mark.parametrize(
    "lines",
    [
        "Content-Length: -1\r\n",
        "Content-Length: abc\r\n",
        "Content-Length: +46\r\n",
        "Content-Length: 4_6\r\n",
        "Content-Length: 46, 46\r\n",
        "Content-Length: 46\r\nContent-Length: 46\r\n",
        "Content-Length: 46\r\nTransfer-Encoding: chunked\r\n",
    ],
    ids=["negative", "junk", "plus", "underscore", "list", "two-headers", "with-chunked"],
)
def test_content_length_is_parsed_strictly(url: str, lines: str) -> None:
    """A Content-Length that is not one plain number is 400 and the connection closes
    (nothing in the body is read as a request)."""
    answer = raw_exchange(url, ingest_head(lines) + SMUGGLED)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert answer.count(b"HTTP/1.1 ") == 1 and b'isstreamer-collector"' not in answer
    assert b"Connection: close" in answer


def test_gzip_body_with_several_members_is_read_whole(url: str) -> None:
    """A body of two concatenated gzip members stores the events of both."""
    body = gzip.compress(b'[{"key":"m1","value":1},') + gzip.compress(b'{"key":"m2","value":2}]')
    response = post_events(url, None, data=body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 204, response.text
    assert sorted(e["key"] for e in read_events(url)) == ["m1", "m2"]


@pytest.mark.parametrize("tail", [b"garbage", b"\x1f\x8b\x08"], ids=["garbage", "truncated"])
def test_gzip_body_with_a_bad_member_is_400(url: str, tail: bytes) -> None:
    """Trailing bytes that are no complete gzip member make the body invalid, not half-read."""
    body = gzip.compress(b'[{"key":"m1","value":1}]') + tail
    response = post_events(url, None, data=body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 400 and "gzip" in response.json()["message"]
    assert requests.get(f"{url}/api/buckets/{BUCKET}/events", timeout=10).status_code == 404


@pytest.fixture
def strict_collector(tmp_path: Path) -> Iterator[Collector]:
    """A collector with half-second deadlines (and the default connection limit)."""
    limits = Limits(header_timeout_s=0.5, body_timeout_s=0.5, idle_timeout_s=0.5)
    with Collector(tmp_path / "s.db", port=0, access_keys=[KEY], limits=limits) as running:
        yield running


def connect(url: str, timeout: float = 10.0) -> socket.socket:
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=timeout)


def drip(conn: socket.socket, data: bytes, interval_s: float = 0.05) -> int:
    """Send ``data`` a byte at a time; returns how many bytes went before the server hung up."""
    for sent, byte in enumerate(data):
        try:
            conn.sendall(bytes([byte]))
        except OSError:
            return sent
        readable, _, _ = select.select([conn], [], [], interval_s)
        if readable:
            return sent + 1  # an answer or the close: the server is done with this connection
    return len(data)


def test_headers_dripped_a_byte_at_a_time_are_cut_off(strict_collector: Collector) -> None:
    """A client sending its headers a byte every 50 ms is cut off at the header deadline
    (0.5 s), although no single read waits long: the deadline is for the whole head."""
    head = ingest_head("X-Padding: " + "p" * 400 + "\r\n")  # ~25 s of dripping
    with connect(strict_collector.url) as conn:
        sent = drip(conn, head)
        assert sent < len(head) // 2
        rest = conn.recv(65536)
        assert rest == b"" or rest.startswith(b"HTTP/1.1 408")


def test_body_dripped_a_byte_at_a_time_gets_408(strict_collector: Collector) -> None:
    """A body sent a byte every 50 ms is answered 408 at the body deadline (0.5 s)."""
    with connect(strict_collector.url) as conn:
        conn.sendall(ingest_head("Content-Length: 500\r\n"))
        sent = drip(conn, b"[" + b" " * 498 + b"]")
        assert sent < 250
        answer = read_response(conn)
        assert answer.startswith(b"HTTP/1.1 408 ") and b"body" in answer


def read_response(conn: socket.socket) -> bytes:
    """One whole response (head and Content-Length body) from ``conn``."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


def test_idle_keep_alive_connection_is_closed(strict_collector: Collector) -> None:
    """After an answer, a connection that sends nothing is closed at the idle deadline."""
    with connect(strict_collector.url) as conn:
        conn.sendall(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_response(conn).startswith(b"HTTP/1.1 200 ")
        readable, _, _ = select.select([conn], [], [], 10)
        assert readable and conn.recv(65536) == b""


def test_connections_past_the_limit_get_503_with_retry_after(tmp_path: Path) -> None:
    """With max_connections busy, a new connection is answered 503 + Retry-After at once, and
    served again once a slot is free."""
    limits = Limits(max_connections=2, header_timeout_s=30)
    with Collector(tmp_path / "c.db", port=0, access_keys=[KEY], limits=limits) as collector:
        url = collector.url
        holders = [connect(url), connect(url)]
        try:
            answer = raw_exchange(url, b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 503 ")
            assert b"Retry-After: 1\r\n" in answer and b"too many connections" in answer
        finally:
            for conn in holders:
                conn.close()

        def served() -> bool:
            reply = raw_exchange(
                url, b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
            )
            return reply.startswith(b"HTTP/1.1 200 ")

        wait_for(served, what="a free connection slot")


@pytest.mark.slow
def test_streamer_rides_out_the_connection_limit(tmp_path: Path) -> None:
    """A Streamer refused with 503 while all slots are held delivers everything once one frees."""
    limits = Limits(max_connections=1, header_timeout_s=30)
    with Collector(tmp_path / "c.db", port=0, access_keys=[KEY], limits=limits) as collector:
        holder = connect(collector.url)
        streamer = Streamer(
            bucket_key="busy",
            access_key=KEY,
            api_base=collector.url,
            spill_dir=str(tmp_path / "spool"),
        )
        for i in range(20):
            streamer.log("n", i)
        streamer.flush(timeout=0.5)
        assert streamer.stats()["sent"] == 0  # refused while the one slot is held
        holder.close()
        assert streamer.close(timeout=30)

        def delivered() -> list[Any] | None:
            # The one slot frees once the Streamer's connection has ended on the server too.
            response = requests.get(f"{collector.url}/api/buckets/busy/events", timeout=10)
            return None if response.status_code == 503 else [e["value"] for e in response.json()]

        assert sorted(wait_for(delivered, what="a free slot")) == list(range(20))


@pytest.mark.slow
def test_client_errors_are_one_line_without_tracebacks_or_keys(
    strict_collector: Collector, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture
) -> None:
    """Malformed requests, resets and timeouts log one debug line each: no traceback, no key."""
    url = strict_collector.url
    secret = "Sup3rSecretKey"
    caplog.set_level(logging.DEBUG, logger="isstreamer.collector")
    bad = [
        f"GET /api/events?accessKey={secret} HTTP/1.1 junk\r\n\r\n".encode(),  # bad syntax
        f"GET /api/events?accessKey={secret} HTTP/9.9\r\n\r\n".encode(),  # bad version
        ingest_head("Content-Length: -1\r\n"),
        b"GET /" + b"x" * 70000 + b" HTTP/1.1\r\n\r\n",  # request line too long
        b"GET /api/health HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n",  # too many headers
    ]
    for data in bad:
        answer = raw_exchange(url, data)
        assert re.match(rb"HTTP/1\.1 (400|414|431|505) ", answer), answer[:100]
        assert answer.endswith(b'"}') and secret.encode() not in answer  # JSON, no echo
    tls_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(11, 51))
    assert raw_exchange(url, tls_hello) == b""  # no line end: closed at the header deadline
    for partial in (b"POST /api/ev", ingest_head("Content-Length: 100\r\n") + b"[{"):
        conn = connect(url)
        conn.sendall(partial)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # a reset in the middle of a request
    with connect(url) as conn:  # a head that never ends: closed at the header deadline
        conn.sendall(b"POST /api/events HTTP/1.1\r\n")
        assert conn.recv(100) == b""
    assert post_events(url, [{"key": "still", "value": 1}]).status_code == 204
    out, err = capfd.readouterr()
    text = out + err + "\n".join(r.getMessage() for r in caplog.records)
    assert "Traceback" not in text and secret not in text
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in caplog.records)
    assert any("client 127.0.0.1" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_serve_process_under_abuse_prints_no_traceback(tmp_path: Path) -> None:
    """`serve --max-connections 1` answers 503 past its slot; resets, junk and a refused
    connection leave no traceback in its output, and it still stops cleanly."""
    server = ServeProcess(tmp_path / "abuse.db", "--access-key", KEY, "--max-connections", "1")
    try:
        holder = connect(server.url)
        holder.sendall(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_response(holder).startswith(b"HTTP/1.1 200 ")  # holds the one slot now
        answer = raw_exchange(server.url, b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After:" in answer
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        holder.sendall(b"POST /api/ev")
        holder.close()  # a reset in the middle of a request line

        def served() -> bool:
            try:
                return post_events(server.url, [{"key": "k", "value": 1}]).status_code == 204
            except requests.ConnectionError:
                return False

        wait_for(served, what="the slot to be free again")
        junk = b"\x00\xff junk\r\n\r\n"  # (the slot frees once the last client's thread ends)
        wait_for(lambda: raw_exchange(server.url, junk).startswith(b"HTTP/1.1 400 "), what="400")
    finally:
        assert server.stop() == 0
    assert "Traceback" not in server.output and "stopped" in server.output


def test_cli_log_of_a_non_utf8_argument_is_stored(url: str, tmp_path: Path) -> None:
    """`isstreamer log k $'caf\\xff'` (the argument arrives as "caf\\udcff") is stored as
    "caf\\ufffd"; the collector answered 500 for it, forever, on every later replay."""
    env = dict(os.environ, ISSTREAMER_ACCESS_KEY=KEY)
    cmd = [
        sys.executable.encode(),
        b"-m",
        b"isstreamer",
        b"log",
        b"word\xfe",
        b"caf\xff",
        b"--api-base",
        url.encode(),
        b"--bucket-key",
        b"cli-odd",
        b"--spill-dir",
        str(tmp_path / "spool").encode(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [(e["key"], e["value"]) for e in read_events(url, "cli-odd")] == [
        ("word\ufffd", "caf\ufffd")
    ]
    assert not list((tmp_path / "spool").glob("**/*.json"))  # nothing left to replay
