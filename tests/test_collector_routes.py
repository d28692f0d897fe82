"""The collector's routes without sockets: Routes.handle() on a Request, against a real store."""

from __future__ import annotations

import email.message
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from isstreamer.collector.routes import SERVICE, HTTPError, Request, Response, Routes
from isstreamer.collector.store import Store

KEY = "routes-test-key"
NOW = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A real SQLite store in tmp_path."""
    opened = Store(tmp_path / "routes.db")
    yield opened
    opened.close()


@pytest.fixture
def routes(store: Store) -> Routes:
    """Routes with open reads (a loopback collector) and a fixed clock."""
    return Routes(store, [KEY], reads_open=True, clock=lambda: NOW)


def call(
    routes: Routes,
    method: str,
    target: str,
    body: Any = b"",
    key: str | None = KEY,
    bucket: str | None = None,
    host: str = "127.0.0.1:8080",
) -> Response:
    headers: dict[str, str] = {"Host": host}
    if key is not None:
        headers["X-IS-AccessKey"] = key
    if bucket is not None:
        headers["X-IS-BucketKey"] = bucket
    return routes.handle(Request(method, target, headers, body))


def never_read() -> bytes:
    raise AssertionError("the body was read")


def test_ingest_stores_events_stamped_by_the_clock(routes: Routes, store: Store) -> None:
    """An array of events is stored (204); one without a timestamp gets the injected clock."""
    body = b'[{"key":"t","value":21.5,"epoch":1699999999.5},{"key":"door","value":"open"}]'
    answer = call(routes, "POST", "/api/events", body, bucket="b1")
    assert (answer.status, answer.body) == (204, b"")
    events = store.events("b1", limit=10)
    assert [(e["key"], e["value"], e["epoch"]) for e in events or []] == [
        ("t", 21.5, 1699999999.5),
        ("door", "open", NOW),
    ]


def test_ingest_without_the_key_is_401_and_never_reads_the_body(routes: Routes) -> None:
    """A wrong or missing key is 401 before the body is read (the plumbing discards it)."""
    for key in ("wrong", None):
        request = Request("POST", "/api/events", {"X-IS-AccessKey": key} if key else {}, never_read)
        answer = routes.handle(request)
        assert answer.status == 401 and "access key" in answer.data()["message"]
        assert not request.body_read


def test_ingest_bad_event_is_400_naming_it_and_stores_nothing(routes: Routes, store: Store) -> None:
    """The first rule-breaking event is named by index and key; the batch is not stored."""
    body = b'[{"key":"ok","value":1},{"key":"bad","value":null}]'
    answer = call(routes, "POST", "/api/events", body, bucket="b1")
    assert answer.status == 400
    assert (answer.data()["event"], answer.data()["key"]) == (1, "bad")
    assert store.buckets() == []


@pytest.mark.parametrize(
    "body, bucket, word",
    [(b"[{", "b1", "JSON"), (b"[]", None, "bucket key"), (b"[]", "a:b", "must not contain")],
)
def test_ingest_bad_body_or_bucket_key_is_400(
    routes: Routes, body: bytes, bucket: str | None, word: str
) -> None:
    """Broken JSON, a missing bucket key or one with a forbidden character: 400 saying so."""
    answer = call(routes, "POST", "/api/events", body, bucket=bucket)
    assert answer.status == 400 and word in answer.data()["message"]


def test_url_variant_types_values_and_takes_the_key_from_the_query(
    routes: Routes, store: Store
) -> None:
    """?accessKey=&bucketKey=&k=v stores typed values; the credentials are no events."""
    target = f"/api/events?accessKey={KEY}&bucketKey=b2&temp=21.5&on=true&name=pump"
    assert call(routes, "GET", target, key=None).status == 204
    got = {e["key"]: e["value"] for e in store.events("b2", limit=10) or []}
    assert got == {"temp": 21.5, "on": True, "name": "pump"}


def test_create_bucket_201_then_204(routes: Routes, store: Store) -> None:
    """A new bucket is 201 with its key and name, an existing one 204."""
    body = b'{"bucketKey":"b3","bucketName":"Kitchen"}'
    first = call(routes, "POST", "/api/buckets", body)
    assert first.status == 201
    assert first.data() == {"bucketKey": "b3", "bucketName": "Kitchen"}
    assert call(routes, "POST", "/api/buckets", body).status == 204
    assert [b["bucketKey"] for b in store.buckets()] == ["b3"]


def test_create_bucket_needs_an_object_with_strings(routes: Routes) -> None:
    """A body that is not an object, or a bucket key that is not a string, is a 400."""
    assert call(routes, "POST", "/api/buckets", b"[1]").status == 400
    assert call(routes, "POST", "/api/buckets", b'{"bucketKey":5}').status == 400


def test_health_says_whether_a_given_key_is_accepted(store: Store) -> None:
    """Health names the service, whether reads are open, and judges a key only if one is given."""
    exposed = Routes(store, [KEY], reads_open=False)
    for key, accepted in ((None, None), (KEY, True), ("wrong", False)):
        data = call(exposed, "GET", "/api/health", key=key).data()
        assert data["service"] == SERVICE and data["readsOpen"] is False
        assert data["keyAccepted"] is accepted


def test_open_reads_need_a_loopback_host(routes: Routes) -> None:
    """Open reads pass without a key for localhost or loopback Hosts, not a foreign one."""
    for host in ("localhost:8080", "127.0.0.1", "[::1]:8080", "app.localhost"):
        assert call(routes, "GET", "/api/buckets", key=None, host=host).status == 200
    assert call(routes, "GET", "/api/buckets", key=None, host="evil.example:8080").status == 401
    assert call(routes, "GET", "/api/buckets", host="evil.example:8080").status == 200


def test_exposed_reads_need_the_key(store: Store) -> None:
    """Bound beyond loopback, every read needs the key, in the header or ?accessKey=."""
    exposed = Routes(store, [KEY], reads_open=False)
    assert call(exposed, "GET", "/api/buckets", key=None).status == 401
    assert call(exposed, "GET", "/api/buckets").status == 200
    assert call(exposed, "GET", f"/api/buckets?accessKey={KEY}", key=None).status == 200


def test_bucket_reads_filter_and_404(routes: Routes) -> None:
    """keys and events of a bucket (with key/since/limit), 404 for an unknown one, 400 for a
    bad limit or time."""
    body = (
        b'[{"key":"a","value":1,"epoch":1699999990},{"key":"a","value":2,"epoch":1699999995},'
        b'{"key":"b","value":"x","epoch":1699999991}]'
    )
    assert call(routes, "POST", "/api/events", body, bucket="b4").status == 204
    keys = call(routes, "GET", "/api/buckets/b4/keys").data()
    assert {k["key"]: k["count"] for k in keys} == {"a": 2, "b": 1}
    events = call(routes, "GET", "/api/buckets/b4/events?key=a&since=1699999992").data()
    assert [e["value"] for e in events] == [2]
    assert [e["value"] for e in call(routes, "GET", "/api/buckets/b4/events?limit=1").data()] == [2]
    assert call(routes, "GET", "/api/buckets/nope/events").status == 404
    assert call(routes, "GET", "/api/buckets/b4/events?limit=0").status == 400
    assert call(routes, "GET", "/api/buckets/b4/events?until=soon").status == 400


def test_encoded_slash_stays_in_the_bucket_key(routes: Routes) -> None:
    """A bucket key holding "/" (sent as %2F) is one path segment, not two."""
    assert call(routes, "POST", "/api/events", b'{"key":"k","value":1}', bucket="a/b").status == 204
    assert call(routes, "GET", "/api/buckets/a%2Fb/keys").status == 200


def test_pages_are_served_and_other_paths_are_refused(routes: Routes) -> None:
    """The dashboard pages come with their type and cache policy; unknown paths are 404,
    writes to pages 405, and unread bodies of refused requests stay unread."""
    index = call(routes, "GET", "/")
    assert index.status == 200 and index.content_type.startswith("text/html")
    assert ("Cache-Control", "no-cache") in index.headers
    for method, target, status in (
        ("GET", "/api/nothing", 404),
        ("POST", "/api/health", 404),
        ("GET", "/static/..%2Fstore.py", 404),
        ("POST", "/", 405),
    ):
        request = Request(method, target, {}, never_read)
        assert routes.handle(request).status == status, target
        assert not request.body_read


def test_request_headers_are_case_insensitive_first_one_wins() -> None:
    """Header names are matched in any case; of a repeated header the first counts."""
    message = email.message.Message()
    message["x-is-accesskey"] = "first"
    message["X-IS-AccessKey"] = "second"
    assert Request("GET", "/", message).headers["x-is-accesskey"] == "first"
    assert Request("GET", "/", {"HOST": "h"}).headers == {"host": "h"}


def test_body_is_read_once_and_a_reader_error_is_the_answer(routes: Routes) -> None:
    """read_body() calls the reader once; an HTTPError it raises (the plumbing's 413) is
    what the client gets."""
    calls = []

    def reader() -> bytes:
        calls.append(1)
        return b"[]"

    request = Request("GET", "/", {}, reader)
    assert request.read_body() == request.read_body() == b"[]" and calls == [1]

    def too_large() -> bytes:
        raise HTTPError(413, "request body larger than 1048576 bytes")

    request = Request("POST", "/api/events", {"X-IS-AccessKey": KEY}, too_large)
    answer = routes.handle(request)
    assert answer.status == 413 and answer.headers == (("Cache-Control", "no-store"),)
