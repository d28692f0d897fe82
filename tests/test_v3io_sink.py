"""The v3io streams sink against the web-API emulator, and the emulator against the official SDK."""

from __future__ import annotations

import base64
import json
import logging
import os
import ssl
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from v3ioserver import PUT_RECORDS, V3ioServer

from isstreamer import ConfigError, Streamer
from isstreamer.config import load_settings
from isstreamer.replay import replay
from isstreamer.retry import RetryPolicy
from isstreamer.sinks.base import Bucket, Outcome, Sink
from isstreamer.sinks.factory import sink_factory
from isstreamer.sinks.v3io import MAX_RECORDS, V3ioSink
from isstreamer.spool import Spool

KEY = "test-access-key"
SECRET = "v3io-0123456789abcdef-very-secret"
NOW = 1_790_000_000.0
VALUES = [21.5, True, "on", 42, False, -3, "21.5", 0.1, 'ünïcode "quoted"\n', 10**15]
FAST = RetryPolicy(attempts=1)  # one try per batch: failures go to the spool at once
QUICK = RetryPolicy(attempts=50, initial_wait=0.0, max_wait=0.0, jitter=0.0)


def events(n: int, keys: int = 7, start: int = 0) -> list[tuple]:
    """n events with distinct epochs and values of every type."""
    return [
        (f"sensor{i % keys}", VALUES[i % len(VALUES)], NOW + i / 1000)
        for i in range(start, start + n)
    ]


@pytest.fixture(autouse=True)
def no_ambient_v3io_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A V3IO_ACCESS_KEY of the machine running the tests must not leak into them."""
    monkeypatch.delenv("V3IO_ACCESS_KEY", raising=False)


@pytest.fixture
def server() -> Iterator[V3ioServer]:
    """A started emulator accepting KEY, with users/telemetry (4 shards) created."""
    with V3ioServer(access_keys=(KEY,)) as srv:
        srv.create(shards=4)
        yield srv


@pytest.fixture
def make_sink() -> Iterator[Any]:
    """Build V3ioSinks that are closed after the test."""
    made: list[V3ioSink] = []

    def make(url: str, key: str = KEY, **kwargs: Any) -> V3ioSink:
        sink = V3ioSink(url, key, **kwargs)
        made.append(sink)
        return sink

    yield make
    for sink in made:
        sink.close()


@pytest.fixture
def make_streamer(tmp_path: Path) -> Iterator[Any]:
    """Build Streamers with a tmp spool; all are closed after the test."""
    made: list[Streamer] = []

    def build(api_base: str, **kwargs: Any) -> Streamer:
        kwargs.setdefault("access_key", KEY)
        kwargs.setdefault("bucket_key", "pi-1")
        kwargs.setdefault("spill_dir", str(tmp_path / "spool"))
        streamer = Streamer(api_base=api_base, **kwargs)
        made.append(streamer)
        return streamer

    yield build
    for streamer in made:
        streamer.close(timeout=2)


def send_until_stored(sink: V3ioSink, bucket: Bucket, batch: list) -> int:
    """Re-send only what each answer reports as failed, as Delivery does; return the rounds."""
    rounds = 0
    while batch:
        rounds += 1
        result = sink.send(bucket, batch)
        if result.ok:
            return rounds
        assert result.failed is not None and result.outcome is Outcome.RETRY, result
        batch = [batch[i] for i in result.failed]
    return rounds


def stored_ids(server: V3ioServer, **where: str) -> Counter:
    return Counter((r["key"], r["epoch"]) for r in server.records(**where))


# ---- what a consumer reads ---------------------------------------------------------------------


def test_sdk_reads_what_the_sink_wrote(server: V3ioServer, make_sink: Any) -> None:
    """A consumer using the SDK's seek/get_records decodes the sink's records as documented."""
    import v3io.dataplane

    batch = events(30)
    assert make_sink(server.api_base()).send(Bucket("pi-1", "Kitchen"), batch).ok
    client = v3io.dataplane.Client(endpoint=server.url, access_key=KEY)
    try:
        seen = []
        for shard in range(client.stream.describe("users", "/telemetry").output.shard_count):
            location = client.stream.seek("users", "/telemetry", shard, "EARLIEST").output.location
            for record in client.stream.get_records(
                "users", "/telemetry", shard, location
            ).output.records:
                seen.append(json.loads(record.data))
    finally:
        client.close()
    assert [(e["key"], e["value"], e["epoch"]) for e in seen] == batch
    assert {(e["bucketKey"], e["bucketName"]) for e in seen} == {("pi-1", "Kitchen")}


# ---- the wire format ----------------------------------------------------------------------------


def test_request_format(server: V3ioServer, make_sink: Any) -> None:
    """POST to /<container>/<stream>/ with X-v3io-function, the session key and base64 Data."""
    assert make_sink(server.api_base()).send(Bucket("pi-1"), events(3)).ok
    [call] = server.calls()
    assert call.method == "POST" and call.path == "/users/telemetry/"
    assert call.headers["x-v3io-session-key"] == KEY
    assert call.headers["content-type"] == "application/json"
    assert "x-is-accesskey" not in call.headers
    records = json.loads(call.body)["Records"]
    assert set(records[0]) == {"Data", "PartitionKey"}
    assert json.loads(base64.b64decode(records[2]["Data"])) == {
        "key": "sensor2",
        "value": "on",
        "epoch": NOW + 0.002,
        "bucketKey": "pi-1",
        "bucketName": "pi-1",
    }


def test_values_keep_their_json_types(server: V3ioServer, make_sink: Any) -> None:
    """bool, int, float and str values (unicode, quotes, big ints) arrive with their types."""
    batch = events(len(VALUES) * 3)
    assert make_sink(server.api_base()).send(Bucket("pi-1"), batch).ok
    got = [(r["key"], r["value"], r["epoch"]) for r in server.records()]
    assert got == batch
    assert [type(r["value"]) for r in server.records()] == [type(v) for _, v, _ in batch]


def test_a_path_with_subdirectories_and_an_https_port(make_sink: Any) -> None:
    """Container, stream path and the endpoint come from the URL; the address has no query."""
    sink = make_sink("v3io+https://webapi.example:8444/bigdata/site/a/telemetry?partition=key")
    assert (sink.container, sink.stream, sink.partition) == ("bigdata", "site/a/telemetry", "key")
    assert sink.endpoint == "https://webapi.example:8444/bigdata/site/a/telemetry"
    assert sink.address == "v3io+https://webapi.example:8444/bigdata/site/a/telemetry"
    assert sink._session.verify not in (False, None)  # certificates are checked, unlike the SDK


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[V3ioServer, Path]]:
    """An HTTPS emulator with a self-signed certificate for 127.0.0.1, and that certificate."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with V3ioServer(access_keys=(KEY,), tls=context) as srv:
        srv.create()
        yield srv, cert


def test_tls_certificates_are_verified(tls_server: tuple[V3ioServer, Path], make_sink: Any) -> None:
    """An unknown certificate is refused (RETRY, nothing sent); a trusted one is used."""
    server, cert = tls_server
    refused = make_sink(server.api_base()).send(Bucket("pi-1"), events(2))
    assert refused.outcome is Outcome.RETRY and "TLS certificate rejected" in refused.message
    assert server.count() == 0
    session = requests.Session()
    session.verify = str(cert)
    assert make_sink(server.api_base(), session=session).send(Bucket("pi-1"), events(2)).ok
    assert server.count() == 2


def test_a_ca_bundle_from_the_environment_is_trusted(
    tls_server: tuple[V3ioServer, Path], make_sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REQUESTS_CA_BUNDLE names the CA of a platform with its own certificates, as for requests."""
    server, cert = tls_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    assert make_sink(server.api_base()).send(Bucket("pi-1"), events(3)).ok
    assert server.count() == 3


def test_the_sdk_does_not_check_certificates(tls_server: tuple[V3ioServer, Path]) -> None:
    """The SDK writes to a server whose certificate nothing vouches for (why the sink skips it)."""
    import v3io.dataplane

    server, _ = tls_server
    client = v3io.dataplane.Client(endpoint=server.url, access_key=KEY)
    try:
        client.stream.put_records("users", "/telemetry", [{"data": '{"key":"k"}'}])
    finally:
        client.close()
    assert server.count() == 1


@pytest.mark.parametrize(
    "url, problem",
    [
        ("v3io+https://host/container-only", "container and a stream path"),
        ("v3io+https:///users/s", "with a host"),
        ("v3io+https://host/users/s?partition=random", "partition must be one of"),
        ("v3io+https://host/users/s?shard=-1", "shard must be a whole number"),
        ("v3io+https://host/users/s?shards=0", "shards must be a whole number"),
        ("v3io+https://host/users/s?colour=red", "unknown option colour"),
    ],
)
def test_bad_urls_are_config_errors(url: str, problem: str) -> None:
    """A URL the sink cannot use is a ConfigError saying what is wrong."""
    with pytest.raises(ConfigError, match=problem):
        V3ioSink(url, KEY)


def test_a_key_no_header_can_carry_is_a_config_error_without_the_key() -> None:
    """A key with a line break is refused by name, never echoed."""
    with pytest.raises(ConfigError, match="line break") as raised:
        V3ioSink("v3io+https://host/users/s", SECRET + "\n")
    assert SECRET not in str(raised.value)


# ---- limits -------------------------------------------------------------------------------------


def test_requests_hold_at_most_1000_records(server: V3ioServer, make_sink: Any) -> None:
    """2,500 events in one send() go as 1000 + 1000 + 500 records, all stored once, in order."""
    batch = events(2500, keys=1)
    assert make_sink(server.api_base()).send(Bucket("pi-1"), batch).ok
    assert [len(json.loads(c.body)["Records"]) for c in server.calls()] == [1000, 1000, 500]
    assert [(r["key"], r["value"], r["epoch"]) for r in server.records()] == batch
    assert MAX_RECORDS == 1000


def test_requests_stay_under_the_byte_limit(server: V3ioServer, make_sink: Any) -> None:
    """With a 20 kB limit, long string values are spread over requests that each fit."""
    batch = [("text", "x" * 1500, NOW + i) for i in range(60)]
    assert make_sink(server.api_base(), max_request_bytes=20_000).send(Bucket("pi-1"), batch).ok
    sizes = [len(c.body) for c in server.calls()]
    assert len(sizes) > 3 and max(sizes) <= 20_000
    assert server.count() == 60


def test_413_halves_the_request(make_sink: Any) -> None:
    """When the service's body limit is below ours, the request is halved until it fits."""
    with V3ioServer(access_keys=(KEY,), max_body=30_000) as small:
        small.create()
        batch = [("text", "y" * 1500, NOW + i) for i in range(40)]
        assert make_sink(small.api_base()).send(Bucket("pi-1"), batch).ok
        assert sorted(r["epoch"] for r in small.records()) == [e for _, _, e in batch]
        assert 413 in [c.status for c in small.calls()]


# ---- partition keys and order -----------------------------------------------------------------


def test_default_partition_is_the_bucket_key(server: V3ioServer, make_sink: Any) -> None:
    """One device's events share its bucket key as partition key: one shard, in order."""
    sink = make_sink(server.api_base())
    for device in ("pi-1", "pi-2", "pi-3", "pi-4", "pi-5"):
        for part in range(3):
            assert sink.send(Bucket(device), events(20, start=part * 20)).ok
    by_device: dict[str, list] = {}
    for record in sorted(server.records(), key=lambda r: (r["_shard"], r["_seq"])):
        assert record["_partition"] == record["bucketKey"]
        by_device.setdefault(record["bucketKey"], []).append(record)
    for records in by_device.values():
        assert len({r["_shard"] for r in records}) == 1
        assert [r["epoch"] for r in records] == [e for _, _, e in events(60)]
    assert len({r[0]["_shard"] for r in by_device.values()}) > 1  # devices spread over shards


def test_partition_by_event_key(server: V3ioServer, make_sink: Any) -> None:
    """partition=key: each key's events on one shard, in order; keys spread over shards."""
    assert make_sink(server.api_base(query="partition=key")).send(Bucket("pi-1"), events(70)).ok
    records = server.records()
    assert all(r["_partition"] == r["key"] for r in records)
    for key in {r["key"] for r in records}:
        mine = sorted((r for r in records if r["key"] == key), key=lambda r: r["_seq"])
        assert len({r["_shard"] for r in mine}) == 1
        assert [r["epoch"] for r in mine] == sorted(r["epoch"] for r in mine)
    assert len({r["_shard"] for r in records}) > 1


def test_partition_none_and_fixed_shard(server: V3ioServer, make_sink: Any) -> None:
    """partition=none sends no PartitionKey; shard=N puts every record on shard N."""
    assert make_sink(server.api_base(query="partition=none")).send(Bucket("pi-1"), events(8)).ok
    assert {r["_partition"] for r in server.records()} == {None}
    assert len({r["_shard"] for r in server.records()}) > 1  # the platform spreads them
    assert (
        make_sink(server.api_base("users", "pinned", "shard=2"))
        .send(Bucket("pi-1"), events(1))
        .outcome
        is Outcome.AUTH
    )  # no such stream yet
    server.create(stream="pinned", shards=3)
    assert (
        make_sink(server.api_base("users", "pinned", "shard=2")).send(Bucket("pi-1"), events(9)).ok
    )
    assert {r["_shard"] for r in server.records(stream="pinned")} == {2}
    assert "ShardId" in json.loads(server.calls()[-1].body)["Records"][0]


# ---- per-record failures ----------------------------------------------------------------------


def test_per_record_failures_report_exactly_the_failed_indices(make_sink: Any) -> None:
    """failed lists the records the answer refused, and only those; the rest are stored."""
    with V3ioServer(access_keys=(KEY,), record_error_rate=0.3, seed=7) as flaky:
        flaky.create(shards=4)
        batch = events(200)
        result = make_sink(flaky.api_base()).send(Bucket("pi-1"), batch)
        assert result.outcome is Outcome.RETRY and result.partial and result.status == 200
        stored = stored_ids(flaky)
        failed = set(result.failed or ())
        assert 20 < len(failed) < 100 and "records not stored: ErrorCode" in result.message
        assert all(stored[(k, e)] == (0 if i in failed else 1) for i, (k, _, e) in enumerate(batch))


def test_resending_only_the_failed_stores_every_event_once(make_sink: Any) -> None:
    """Re-sending only `failed` until nothing fails: each of 3,000 events stored exactly once."""
    with V3ioServer(access_keys=(KEY,), record_error_rate=0.25, seed=3) as flaky:
        flaky.create(shards=4)
        batch = events(3000)
        rounds = send_until_stored(make_sink(flaky.api_base()), Bucket("pi-1"), batch)
        assert rounds > 2
        assert stored_ids(flaky) == Counter((k, e) for k, _, e in batch)
        sent = sum(len(json.loads(c.body)["Records"]) for c in flaky.calls())
        assert sent < 2 * len(batch)  # the stored ones were never sent again


def test_a_later_request_failing_reports_the_rest_as_not_stored(
    server: V3ioServer, make_sink: Any
) -> None:
    """1000 stored, then 503: failed is every index from 1000 on, with the 503's outcome."""
    server.delay(0.0, path=PUT_RECORDS)  # the first request is answered as usual
    server.fail(503, path=PUT_RECORDS)
    result = make_sink(server.api_base()).send(Bucket("pi-1"), events(2500))
    assert result.outcome is Outcome.RETRY and result.status == 503
    assert (
        result.failed == tuple(range(1000, 2500))
        and "1500 of 2500 records not stored: 503" in result.message
    )
    assert server.count() == 1000 and len(server.calls()) == 2  # the third request not tried


def test_a_refused_request_does_not_stop_the_next_ones(server: V3ioServer, make_sink: Any) -> None:
    """A 400 for the second of three requests: only its records are reported, as BAD."""
    server.delay(0.0, path=PUT_RECORDS)
    server.fail(400, path=PUT_RECORDS)
    result = make_sink(server.api_base()).send(Bucket("pi-1"), events(2500))
    assert result.outcome is Outcome.BAD and result.failed == tuple(range(1000, 2000))
    assert server.count() == 1500 and len(server.calls()) == 3


def test_an_unreadable_answer_resends_the_whole_request(server: V3ioServer, make_sink: Any) -> None:
    """A 200 that is not JSON, or lists the wrong number of records, is a plain RETRY."""
    sink = make_sink(server.api_base())
    server.fail(200, body="<html>proxy</html>", path=PUT_RECORDS)
    garbled = sink.send(Bucket("pi-1"), events(3))
    assert garbled.outcome is Outcome.RETRY and garbled.failed is None
    server.fail(200, body={"FailedRecordCount": 1, "Records": [{"ErrorCode": 1}]}, path=PUT_RECORDS)
    short = sink.send(Bucket("pi-1"), events(3))
    assert short.outcome is Outcome.RETRY and short.failed is None
    assert "does not say which" in short.message


# ---- service failures ---------------------------------------------------------------------------


def test_wrong_key_is_auth_and_never_shown(
    server: V3ioServer, make_sink: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """401 is AUTH with the key redacted in the message, the repr and the log."""
    caplog.set_level(logging.DEBUG, logger="isstreamer")
    sink = make_sink(server.api_base(), key=SECRET)
    result = sink.send(Bucket("pi-1"), events(2))
    assert result.outcome is Outcome.AUTH and result.status == 401
    assert "401" in result.message
    for text in (result.message, repr(sink), sink.address, caplog.text):
        assert SECRET not in text


def test_missing_stream_names_container_and_path(server: V3ioServer, make_sink: Any) -> None:
    """404 is AUTH (events kept) with one message naming the container and the stream path."""
    result = make_sink(server.api_base("bigdata", "site/a/stream")).send(Bucket("b"), events(2))
    assert result.outcome is Outcome.AUTH and result.status == 404
    assert "'site/a/stream'" in result.message and "'bigdata'" in result.message
    assert "?create=1" in result.message and server.count("bigdata", "site/a/stream") == 0


def test_create_makes_a_missing_stream(server: V3ioServer, make_sink: Any) -> None:
    """?create=1&shards=3&retention_hours=48 creates the stream once, then stores the batch."""
    sink = make_sink(server.api_base("users", "fresh", "create=1&shards=3&retention_hours=48"))
    assert sink.send(Bucket("pi-1"), events(5)).ok
    assert sink.send(Bucket("pi-1"), events(5, start=5)).ok
    stream = server.streams[("users", "fresh")]
    assert (stream.shard_count, stream.retention_hours) == (3, 48)
    assert len(server.calls("CreateStream")) == 1 and server.count("users", "fresh") == 10


@pytest.mark.parametrize(
    "status, outcome",
    [
        (400, Outcome.BAD),
        (403, Outcome.AUTH),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
    ],
)
def test_statuses(server: V3ioServer, make_sink: Any, status: int, outcome: Outcome) -> None:
    """Each status of a whole request maps to its outcome, for the whole batch."""
    server.fail(status, path=PUT_RECORDS)
    result = make_sink(server.api_base()).send(Bucket("pi-1"), events(3))
    assert (result.outcome, result.status, result.failed) == (outcome, status, None)


def test_retry_after_is_passed_on(server: V3ioServer, make_sink: Any) -> None:
    """A 503 with Retry-After: 7 asks the worker to wait 7 s."""
    server.fail(503, headers={"Retry-After": "7"}, path=PUT_RECORDS)
    assert make_sink(server.api_base()).send(Bucket("pi-1"), events(1)).retry_after == 7.0


def test_hang_times_out_and_refused_connection_retries(server: V3ioServer, make_sink: Any) -> None:
    """A hung answer ends at the timeout as RETRY; a stopped server is RETRY too."""
    server.hang(path=PUT_RECORDS)
    sink = make_sink(server.api_base(), timeout=0.3)
    hung = sink.send(Bucket("pi-1"), events(1))
    assert hung.outcome is Outcome.RETRY and "within 0.3 s" in hung.message
    server.clear()
    server.stop()
    down = sink.send(Bucket("pi-1"), events(1))
    assert down.outcome is Outcome.RETRY and "cannot reach" in down.message


def test_unencodable_event_is_bad_not_raised(server: V3ioServer, make_sink: Any) -> None:
    """An event that skipped validation (NaN) is BAD for the batch; send() never raises."""
    result = make_sink(server.api_base()).send(Bucket("pi-1"), [("k", float("nan"), NOW)])
    assert result.outcome is Outcome.BAD and server.calls() == []


# ---- through the Streamer and the factory ------------------------------------------------------


def test_factory_builds_the_sink_for_both_schemes(server: V3ioServer) -> None:
    """v3io+http:// and v3io+https:// api_bases get a V3ioSink with the configured key."""
    for base in (server.api_base(), "v3io+https://webapi.example/users/s"):
        settings = load_settings({"api_base": base, "access_key": KEY}, environ={})
        sink = sink_factory(settings, 5.0)()
        assert isinstance(sink, V3ioSink) and isinstance(sink, Sink) and sink.timeout == 5.0
        sink.close()


def test_v3io_access_key_is_read_for_v3io_only() -> None:
    """V3IO_ACCESS_KEY gives the key of a v3io api_base; never of another receiver."""
    env = {"V3IO_ACCESS_KEY": SECRET}
    v3io_base = "v3io+https://webapi.example/users/s"
    settings = load_settings({"api_base": v3io_base}, environ=env)
    assert settings.access_key == SECRET
    assert settings.sources["access_key"] == "environment (V3IO_ACCESS_KEY)"
    assert load_settings({"api_base": "https://groker.init.st"}, environ=env).access_key == ""
    own = dict(env, ISSTREAMER_ACCESS_KEY="own-key")
    assert load_settings({"api_base": v3io_base}, environ=own).access_key == "own-key"


def test_streamer_delivers_to_a_stream(server: V3ioServer, make_streamer: Any) -> None:
    """Streamer(buffer_size=2500) logs 6,000 events: all stored, in order, ≤ 1000 per request."""
    streamer = make_streamer(server.api_base(), buffer_size=2500, bucket_name="Kitchen")
    for key, value, epoch in events(6000):
        streamer.log(key, value, epoch=epoch)
    assert streamer.flush(timeout=20)
    assert [(r["key"], r["value"], r["epoch"]) for r in server.records()] == events(6000)
    assert {r["bucketName"] for r in server.records()} == {"Kitchen"}
    sizes = [len(json.loads(c.body)["Records"]) for c in server.calls()]
    assert max(sizes) <= 1000 and sum(sizes) == 6000 and len(sizes) >= 6


def test_exactly_once_through_a_streamer_under_record_failures(make_streamer: Any) -> None:
    """With 20 % of records refused, each of 2,000 events is stored once: no loss, no repeat."""
    with V3ioServer(access_keys=(KEY,), record_error_rate=0.2, seed=11) as flaky:
        flaky.create(shards=4)
        streamer = make_streamer(flaky.api_base(), buffer_size=200, retry_policy=QUICK)
        for key, value, epoch in events(2000):
            streamer.log(key, value, epoch=epoch)
        assert streamer.close(timeout=20)
        assert stored_ids(flaky) == Counter((k, e) for k, _, e in events(2000))
        assert streamer.stats()["sent"] == 2000 and streamer.stats()["spilled"] == 0


def test_wrong_key_spills_without_the_key_then_replays_with_the_right_one(
    server: V3ioServer, make_streamer: Any, tmp_path: Path
) -> None:
    """401: events go to the spool (no key in the files); a replay with the key stores them."""
    streamer = make_streamer(server.api_base(), access_key=SECRET, retry_policy=FAST)
    for key, value, epoch in events(30):
        streamer.log(key, value, epoch=epoch)
    assert streamer.flush(timeout=10)
    streamer.close(timeout=2)
    spool = Spool(tmp_path / "spool")
    assert server.count() == 0 and sum(1 for _ in spool.files()) >= 1
    for path in spool.files():
        assert SECRET not in path.read_text() and server.api_base() in path.read_text()
    result = replay(
        tmp_path / "spool", access_key=KEY, api_base=server.api_base(), retry_policy=FAST
    )
    assert result.ok and result.sent == 30
    assert stored_ids(server) == Counter((k, e) for k, _, e in events(30))
    assert spool.files() == []


def test_missing_stream_keeps_events_with_one_error(
    server: V3ioServer, make_streamer: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No such stream: the events are spilled and one error names the container and path."""
    caplog.set_level(logging.WARNING, logger="isstreamer")
    streamer = make_streamer(server.api_base("users", "absent"), buffer_size=10, retry_policy=FAST)
    for key, value, epoch in events(40):
        streamer.log(key, value, epoch=epoch)
    assert streamer.flush(timeout=10)
    errors = [r for r in caplog.records if "no stream 'absent'" in r.getMessage()]
    assert len(errors) == 1 and errors[0].levelno == logging.ERROR
    assert "'users'" in errors[0].getMessage()
    assert streamer.stats()["spilled"] == 40


def test_outage_then_replay_stores_everything_once(make_streamer: Any) -> None:
    """Service down: the events are spilled; once it is back they are replayed, each once."""
    server = V3ioServer(access_keys=(KEY,)).start()
    server.create(shards=2)
    server.stop()
    probing = RetryPolicy(attempts=1, probe_initial=0.01, probe_max=0.05)
    streamer = make_streamer(server.api_base(), buffer_size=50, retry_policy=probing)
    during, after = events(300), events(100, start=300)
    for key, value, epoch in during:
        streamer.log(key, value, epoch=epoch)
    assert streamer.flush(timeout=10)
    assert streamer.stats()["spilled"] == 300 and server.count() == 0
    with server:
        for key, value, epoch in after:
            streamer.log(key, value, epoch=epoch)
        assert server.wait_for_records(400, timeout=20), streamer.stats()
        assert streamer.close(timeout=10)  # True: nothing left on disk or in memory
        assert stored_ids(server) == Counter((k, e) for k, _, e in during + after)
        stats = streamer.stats()
        assert stats["replayed"] >= 300 and stats["sent"] + stats["replayed"] == 400, stats
        assert stats["spool_files"] == 0


# ---- the command line -------------------------------------------------------------------------


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "isstreamer", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def cli_env(server: V3ioServer, tmp_path: Path) -> dict[str, str]:
    """A CLI environment aimed at the emulator's stream, the key from V3IO_ACCESS_KEY."""
    return dict(
        os.environ,
        ISSTREAMER_API_BASE=server.api_base(),
        V3IO_ACCESS_KEY=KEY,
        ISSTREAMER_SPILL_DIR=str(tmp_path / "spool"),
        PYTHONUNBUFFERED="1",
    )


@pytest.mark.slow
def test_cli_log_and_replay_with_a_v3io_api_base(
    server: V3ioServer, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`isstreamer log` stores a typed record; `replay` sends a spool to the stream."""
    env = cli_env
    done = _cli(env, "log", "--bucket-key", "pi", "temperature", "21.5")
    assert done.returncode == 0, done.stderr
    [record] = server.records()
    assert (record["key"], record["value"], record["bucketKey"]) == ("temperature", 21.5, "pi")
    spool = Spool(tmp_path / "spool")
    spool.write(Bucket("old-pi"), [("k", 1, NOW), ("k", True, NOW + 1)], sink=server.api_base())
    done = _cli(env, "replay")
    assert done.returncode == 0, done.stderr
    assert [r["value"] for r in server.records() if r["bucketKey"] == "old-pi"] == [1, True]
    assert spool.files() == [] and KEY not in done.stderr


@pytest.mark.slow
def test_cli_pipe_and_metrics_with_a_v3io_api_base(
    server: V3ioServer, cli_env: dict[str, str]
) -> None:
    """`pipe` stores every line's event; `metrics --once` stores the system keys."""
    done = subprocess.run(
        [sys.executable, "-m", "isstreamer", "--bucket-key", "p", "pipe"],
        env=cli_env,
        input="a,1\nb = 2.5\nc,hello\n",
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert {r["key"]: r["value"] for r in server.records()} == {"a": 1, "b": 2.5, "c": "hello"}
    done = _cli(cli_env, "metrics", "--once")
    assert done.returncode == 0, done.stderr
    keys = {r["key"] for r in server.records() if r["bucketKey"] != "p"}
    assert {"cpu_total", "mem_percent"} <= keys


def test_the_bench_runs_and_prints_every_row() -> None:
    """`python bench/v3io_bench.py` on a tiny workload prints every row and the goal line."""
    bench = Path(__file__).resolve().parent.parent / "bench" / "v3io_bench.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--events", "3000", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for row in (
        "emulator, 1 conn",
        "SDK put_records",
        "SDK batch, 8 conns",
        "sink.send",
        "Streamer",
        "goal: sink.send",
    ):
        assert row in done.stdout
