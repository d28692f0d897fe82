"""The HTTP sink's fast path: JSON body exactly json.dumps's, adapter keeps requests' behaviour."""

from __future__ import annotations

import json
import math
import random
from decimal import Decimal

import pytest
import requests
from apiserver import ApiServer

from isstreamer.sinks.base import Bucket, Outcome
from isstreamer.sinks.initialstate import InitialStateSink, LeanAdapter, encode_events
from isstreamer.sinks.lean import unencodable


def reference(events: list) -> bytes:
    """What the sink used to send: the C encoder over one dict per event."""
    return json.dumps(
        [{"key": k, "value": v, "epoch": e} for k, v, e in events],
        separators=(",", ":"),
        allow_nan=False,
    ).encode()


class MyFloat(float):
    pass


class MyStr(str):
    pass


SAMPLES = [
    ("temp", 21.5, 1700000000.25),
    ("on", True, 1700000001),
    ("off", False, 1.0),
    ("count", 3, 2.5),
    ("big", 10**30, 0.1),
    ("neg", -0.0, 1e-7),
    ("tiny", 5e-324, 1e300),
    ("huge", 1.7976931348623157e308, 3),
    ("name", 'kitchen "north" \\ \n\t', 1700000003.0),
    ("ünïcödé ☃", "温度 🌡", 1700000004.5),
    ("", "", 0),
    ("control\x00\x1f", "\u2028\u2029", -1.5),
    (MyStr("sub"), MyFloat(1.25), MyFloat(2.0)),
    ("zero", 0, 0.0),
    ("negint", -12, -1700000000.123456789),
]


def test_identical_to_json_dumps_on_edge_cases() -> None:
    """Quotes, escapes, unicode, bool/int/float edges, subclasses: byte for byte as json.dumps."""
    assert encode_events(SAMPLES) == reference(SAMPLES)
    for sample in SAMPLES:
        assert encode_events([sample]) == reference([sample])


def test_identical_to_json_dumps_on_random_batches() -> None:
    """Random batches of every value type, shared and distinct epochs, match json.dumps exactly."""
    rng = random.Random(7)
    makers = [
        lambda: rng.uniform(-1e6, 1e6),
        lambda: rng.randint(-(2**63), 2**63),
        lambda: rng.random() < 0.5,
        lambda: "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(0, 20))),
        lambda: round(rng.uniform(0, 100), 2),
    ]
    for _ in range(200):
        shared = rng.uniform(1e9, 2e9)
        batch = [
            (
                f"k{rng.randint(0, 30)}",
                rng.choice(makers)(),
                shared if rng.random() < 0.5 else rng.uniform(1e9, 2e9),
            )
            for _ in range(rng.randint(0, 50))
        ]
        assert encode_events(batch) == reference(batch)


def test_empty_batch() -> None:
    """No events is an empty JSON array."""
    assert encode_events([]) == b"[]"


@pytest.mark.parametrize(
    "event",
    [
        ("k", math.nan, 1.0),
        ("k", math.inf, 1.0),
        ("k", 1.0, -math.inf),
        ("k", Decimal("1.5"), 1.0),
        ("k", object(), 1.0),
    ],
)
def test_refuses_what_json_dumps_refuses(event: tuple) -> None:
    """NaN, infinity and types JSON lacks raise ValueError/TypeError, as json.dumps does."""
    with pytest.raises((ValueError, TypeError)):
        reference([event])
    with pytest.raises((ValueError, TypeError)):
        encode_events([event])


def test_own_session_uses_lean_adapter(api_server: ApiServer, access_key: str) -> None:
    """A sink without a given session sends through LeanAdapter over one kept-alive connection."""
    sink = InitialStateSink(api_server.url, access_key)
    try:
        assert isinstance(sink._adapter, LeanAdapter)
        for _ in range(3):
            assert sink.send(Bucket("b"), SAMPLES[:2]).ok
    finally:
        sink.close()
    assert len({r.conn for r in api_server.requests}) == 1
    assert api_server.requests[-1].body == reference(SAMPLES[:2])


def test_given_session_adapter_is_used(api_server: ApiServer, access_key: str) -> None:
    """A session passed in keeps the adapter mounted on it."""
    calls = []

    class Counting(requests.adapters.HTTPAdapter):
        def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(request.url)
            return super().send(request, **kwargs)

    session = requests.Session()
    session.mount("http://", Counting())
    sink = InitialStateSink(api_server.url, access_key, session=session)
    try:
        assert sink.send(Bucket("b"), SAMPLES[:1]).ok
    finally:
        sink.close()
    assert [url.rsplit("/", 2)[-2:] for url in calls] == [["api", "buckets"], ["api", "events"]]


class Unprintable:
    """A value whose repr() and str() raise, as some user types do."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    __str__ = __repr__


@pytest.mark.parametrize(
    "bad, reason",
    [
        (("bad", math.nan, 1.0), "ValueError"),
        (("bad", 10**5000, 1.0), "ValueError"),
        (("bad", Decimal("1.5"), 1.0), "TypeError"),
        (("bad", 1, object()), "TypeError"),
        (("bad", Unprintable(), 1.0), "TypeError"),
    ],
)
def test_unencodable_event_is_named_not_raised(
    api_server: ApiServer, access_key: str, bad: tuple, reason: str
) -> None:
    """A batch with one value the encoder refuses is BAD, naming that event; nothing is sent."""
    sink = InitialStateSink(api_server.url, access_key)
    batch = [("a", 1, 1.0), ("b", 2.5, 2.0), bad, ("c", "x", 3.0)]
    try:
        result = sink.send(Bucket("b"), batch)
    finally:
        sink.close()
    assert result.outcome is Outcome.BAD and result.failed is None
    assert result.message.startswith("event 2 (key 'bad') cannot be encoded as JSON")
    assert reason in result.message
    assert [r.path for r in api_server.requests] == ["/api/buckets"]


def test_unencodable_key_is_named_safely(api_server: ApiServer, access_key: str) -> None:
    """An event whose key is itself unencodable and unprintable is still named, by index."""
    sink = InitialStateSink(api_server.url, access_key)
    try:
        result = sink.send(Bucket("b"), [("a", 1, 1.0), (Unprintable(), 1, 1.0)])
    finally:
        sink.close()
    assert result.outcome is Outcome.BAD
    assert "event 1 (key <Unprintable with a failing repr>)" in result.message


def test_unencodable_finds_the_first_bad_event() -> None:
    """unencodable() gives the index and reason of the first refused event, None if all pass."""
    assert unencodable(SAMPLES) is None
    found = unencodable([("a", 1, 1.0), ("b", math.inf, 1.0), ("c", math.nan, 1.0)])
    assert found is not None and found[0] == 1 and found[1].startswith("ValueError")


# ---- the kept-alive POST ----------------------------------------------------------------


def _events_request(sink: InitialStateSink) -> requests.PreparedRequest:
    return sink._template("/api/events", "b")


def test_kept_alive_post_needs_a_connected_pool(api_server: ApiServer, access_key: str) -> None:
    """Without a connection in the pool the fast path sends nothing and says so (None); once
    one is kept alive it carries the request and returns the whole answer."""
    sink = InitialStateSink(api_server.url, access_key)
    lean = sink._lean
    assert lean is not None
    body = encode_events(SAMPLES[:2])
    try:
        verify = sink._verify()
        assert lean.post_kept_alive(_events_request(sink), body, 5.0, verify, None, {}) is None
        assert api_server.requests == []
        assert sink.send(Bucket("b"), SAMPLES[:1]).ok  # bucket and events: connects
        answer = lean.post_kept_alive(_events_request(sink), body, 5.0, verify, None, {})
    finally:
        sink.close()
    assert answer is not None and answer[0] == 204
    assert api_server.requests[-1].body == body
    assert len({r.conn for r in api_server.requests}) == 1


def test_plain_http_proxy_goes_through_the_adapter(
    api_server: ApiServer, access_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through a plain-HTTP proxy (absolute request line, proxy headers) every request takes
    HTTPAdapter.send, and the events still arrive through the proxy."""
    monkeypatch.setenv("HTTP_PROXY", api_server.url)  # the local server plays the proxy
    sink = InitialStateSink("http://receiver.invalid", access_key)
    lean = sink._lean
    assert lean is not None
    try:
        for _ in range(3):
            assert sink.send(Bucket("b"), SAMPLES[:2]).ok
        body = encode_events(SAMPLES[:2])
        assert (
            lean.post_kept_alive(
                _events_request(sink), body, 5.0, sink._verify(), None, sink._proxies
            )
            is None
        )
    finally:
        sink.close()
    assert len(api_server.events) == 6
    assert {r.headers["host"] for r in api_server.requests} == {"receiver.invalid"}


def test_connection_close_answer_reconnects(api_server: ApiServer, access_key: str) -> None:
    """An answer saying Connection: close closes the pooled connection; the next send opens a
    new one and is delivered."""
    sink = InitialStateSink(api_server.url, access_key)
    try:
        assert sink.send(Bucket("b"), SAMPLES[:1]).ok
        api_server.fail(204, headers={"Connection": "close"})
        assert sink.send(Bucket("b"), SAMPLES[:1]).ok
        assert sink.send(Bucket("b"), SAMPLES[:1]).ok
    finally:
        sink.close()
    conns = [r.conn for r in api_server.requests]
    assert conns[0] == conns[1] == conns[2] != conns[3]


def test_large_batch_arrives_whole_on_the_kept_alive_path(
    api_server: ApiServer, access_key: str
) -> None:
    """A body larger than the one-write limit (head and body written apart) arrives intact."""
    batch = [(f"k{i % 20}", i + 0.25, 1700000000.0 + i) for i in range(5000)]
    sink = InitialStateSink(api_server.url, access_key)
    try:
        assert sink.send(Bucket("b"), SAMPLES[:1]).ok
        assert sink.send(Bucket("b"), batch).ok
    finally:
        sink.close()
    assert len(api_server.requests[-1].body) > 64 * 1024
    assert api_server.requests[-1].body == reference(batch)


def test_error_answer_on_the_kept_alive_path_keeps_its_details(
    api_server: ApiServer, access_key: str
) -> None:
    """A 503 read by the fast path gives the same outcome, message and Retry-After as send()."""
    sink = InitialStateSink(api_server.url, access_key)
    try:
        assert sink.send(Bucket("b"), SAMPLES[:1]).ok
        api_server.fail(503, headers={"Retry-After": "3"}, body={"message": "busy ünïcödé"})
        result = sink.send(Bucket("b"), SAMPLES[:1])
    finally:
        sink.close()
    assert result.outcome is Outcome.RETRY and result.status == 503
    assert result.retry_after == 3.0
    assert result.message == "503 Service Unavailable: busy ünïcödé"
