"""The v3io web-API emulator itself, checked against the official v3io SDK (a test dependency)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import requests
from v3ioserver import PUT_RECORDS, V3ioServer

KEY = "test-access-key"


@pytest.fixture
def server() -> Iterator[V3ioServer]:
    """A started emulator accepting KEY, with users/telemetry (4 shards) created."""
    with V3ioServer(access_keys=(KEY,)) as srv:
        srv.create(shards=4)
        yield srv


def put(server: V3ioServer, records: list[dict], timeout: float = 5) -> requests.Response:
    """One raw PutRecords call, as the web API documents it."""
    return requests.post(
        f"{server.url}/users/telemetry/",
        json={"Records": records},
        headers={"X-v3io-function": PUT_RECORDS, "X-v3io-session-key": KEY},
        timeout=timeout,
    )


def test_sdk_creates_describes_puts_and_reads(server: V3ioServer) -> None:
    """The v3io SDK creates, describes, puts to and reads back from the emulator."""
    import v3io.dataplane

    client = v3io.dataplane.Client(endpoint=server.url, access_key=KEY)
    try:
        client.stream.create("users", "/sdk", shard_count=3, retention_period_hours=6)
        described = client.stream.describe("users", "/sdk").output
        assert (described.shard_count, described.retention_period_hours) == (3, 6)
        put = client.stream.put_records(
            "users",
            "/sdk",
            [
                {"data": "a1", "partition_key": "a"},
                {"data": "b", "shard_id": 2},
                {"data": "a2", "partition_key": "a"},
                {"data": "bad", "shard_id": 7},
            ],
        )
        out = put.output
        assert out.failed_record_count == 1 and out.records[3].error_code is not None
        assert out.records[1].shard_id == 2 and out.records[0].shard_id == out.records[2].shard_id
        shard = out.records[0].shard_id
        location = client.stream.seek("users", "/sdk", shard, "EARLIEST").output.location
        got = client.stream.get_records("users", "/sdk", shard, location).output
        assert [r.data for r in got.records] == [b"a1", b"a2"]
        assert [r.sequence_number for r in got.records] == [1, 2]
        assert got.records[0].partition_key == "a"
        after = client.stream.get_records("users", "/sdk", shard, got.next_location).output
        assert after.records == []
        latest = client.stream.seek("users", "/sdk", 2, "SEQUENCE", starting_sequence_number=1)
        assert (
            client.stream.get_records("users", "/sdk", 2, latest.output.location, limit=1)
            .output.records[0]
            .data
            == b"b"
        )
    finally:
        client.close()


def test_sdk_sees_404_for_a_missing_stream_and_401_for_a_wrong_key(server: V3ioServer) -> None:
    """The SDK raises its HttpResponseError with 404 (no stream) and 401 (wrong key)."""
    import v3io.dataplane
    from v3io.dataplane.response import HttpResponseError

    logging.getLogger("v3io").setLevel(logging.CRITICAL)
    for key, path, status in ((KEY, "/missing", 404), ("wrong", "/telemetry", 401)):
        client = v3io.dataplane.Client(endpoint=server.url, access_key=key)
        try:
            with pytest.raises(HttpResponseError) as raised:
                client.stream.describe("users", path)
            assert raised.value.status_code == status
        finally:
            client.close()


def test_sdk_batch_mode_with_eight_connections(server: V3ioServer) -> None:
    """The SDK's batch mode (max_connections=8) stores every record once on the emulator."""
    import v3io.dataplane

    client = v3io.dataplane.Client(endpoint=server.url, access_key=KEY, max_connections=8)
    try:
        for i in range(40):
            client.batch.stream.put_records(
                "users",
                "/telemetry",
                [{"data": json.dumps({"key": "k", "epoch": i}), "partition_key": "k"}],
            )
        responses = client.batch.wait()
        assert [r.output.failed_record_count for r in responses] == [0] * 40
    finally:
        client.close()
    assert sorted(r["epoch"] for r in server.records()) == list(range(40))
    assert len({r.conn for r in server.calls()}) > 1  # really several connections


def test_record_errors_fail_on_command_and_are_reproducible() -> None:
    """record_error_rate refuses that share of records inside a 200, the same ones per seed."""
    answers = []
    for _ in range(2):
        with V3ioServer(access_keys=(KEY,), record_error_rate=0.5, seed=5) as flaky:
            flaky.create()
            answer = put(flaky, [{"Data": "eA==", "PartitionKey": "k"}] * 40).json()
            assert answer["FailedRecordCount"] == sum("ErrorCode" in r for r in answer["Records"])
            assert (
                5 < answer["FailedRecordCount"] < 35
                and flaky.count() == 40 - answer["FailedRecordCount"]
            )
            answers.append(answer)
    assert answers[0] == answers[1]


def test_statuses_and_hangs_on_command(server: V3ioServer) -> None:
    """fail() answers the status given for the function given; hang() never answers."""
    server.fail(503, path=PUT_RECORDS)
    assert put(server, [{"Data": "eA=="}]).status_code == 503
    assert put(server, [{"Data": "eA=="}]).status_code == 200
    server.hang(path=PUT_RECORDS)
    with pytest.raises(requests.Timeout):
        put(server, [{"Data": "eA=="}], timeout=0.2)
    server.clear()
    assert server.count() == 1


def test_limits_and_bad_requests(server: V3ioServer) -> None:
    """More than 1000 records or a record without Data is 400; a missing stream is 404."""
    assert put(server, [{"Data": "eA=="}] * 1001).status_code == 400
    assert put(server, [{"PartitionKey": "k"}]).status_code == 400
    missing = requests.post(
        f"{server.url}/users/nope/",
        json={"Records": [{"Data": "eA=="}]},
        headers={"X-v3io-function": PUT_RECORDS, "X-v3io-session-key": KEY},
        timeout=5,
    )
    assert missing.status_code == 404
    assert json.loads(missing.text)["ErrorCode"] == "ResourceNotFoundException"
    assert server.count() == 0
