"""`isstreamer relay` (relay.py): the loop, its signals, the receiver failing, the command line."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from apiserver import ApiServer
from rediscluster import require
from redisserver import REDIS_SERVER, RedisServer
from relay_helpers import (  # noqa: F401 (the server and api fixtures)
    GROUP,
    api_fixture,
    delivered,
    expected,
    in_process_relay,
    pairs,
    pending,
    redis,
    relay_args,
    relay_cmd,
    relay_env,
    run_cli,
    run_relay,
    server_fixture,
    start_relay,
    stderr_of,
    stop,
    wait_for,
    write,
)


@pytest.mark.slow
def test_once_forwards_every_bucket_with_types_and_epochs(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """relay --once delivers each stream to its own bucket, values typed, epochs kept, all acked."""
    buckets = ["pi0", "pi1", "pi2"]
    write(server.url, buckets, 1200)
    done = run_relay(api, tmp_path / "spool", server.url)
    assert done.returncode == 0, done.stderr
    assert "forwarded 3600, acknowledged 3600" in done.stderr
    for bucket in buckets:
        events = api.events_for(bucket)
        assert Counter((e["key"], e["epoch"]) for e in events) == expected(1200)
        assert [(e["key"], e["value"]) for e in events[:4]] == [
            ("sensor0", 21.5),
            ("sensor1", True),
            ("sensor2", "on"),
            ("sensor3", 42),
        ]
    assert pending(server.client(), buckets) == 0
    assert "test-access-key" not in done.stderr
    assert {b: api.buckets[b] for b in buckets} == {b: b.upper() for b in buckets}  # names kept


@pytest.mark.slow
def test_relay_to_another_redis(server: RedisServer, api: ApiServer, tmp_path: Path) -> None:
    """--api-base redis://… makes the receiver another Redis: the same streams appear there."""
    write(server.url, ["pi0"], 700)
    with RedisServer(tmp_path / "target") as target:
        env = dict(relay_env(api, tmp_path / "spool"), ISSTREAMER_API_BASE=target.url)
        done = run_cli(env, *relay_args(server.url, "--once"))
        assert done.returncode == 0, done.stderr
        copied = target.client().xrange("isstreamer:pi0")
        assert [f for _, f in copied] == [f for _, f in server.client().xrange("isstreamer:pi0")]
        assert target.client().hgetall("isstreamer:buckets") == {"pi0": "PI0"}


def test_own_pending_entries_come_first_on_start(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """Entries this consumer name read before a crash are forwarded on start, not claimed."""
    write(server.url, ["pi0"], 300)
    client = server.client()
    client.xgroup_create("isstreamer:pi0", GROUP, id="0")
    client.xreadgroup(GROUP, "r1", {"isstreamer:pi0": ">"}, count=100)  # then "crashed"
    relay = in_process_relay(server.url, api, tmp_path / "spool", consumer="r1", claim_idle_s=3600)
    assert relay.run(once=True)
    relay.streamer.close(5)
    assert Counter(pairs(api, "pi0")) == expected(300)
    assert relay.counts["claimed"] == 0 and pending(client, ["pi0"]) == 0


@pytest.mark.slow
def test_bucket_pattern_and_new_buckets_are_discovered(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """--buckets limits the streams read; a running relay picks up a bucket that appears later."""
    write(server.url, ["kitchen-1", "garage-1"], 50)
    proc = start_relay(
        api, tmp_path / "spool", server.url, "--buckets", "kitchen-*", "--discover-interval", "0.2"
    )
    try:
        assert wait_for(lambda: len(api.events_for("kitchen-1")) == 50, 30)
        write(server.url, ["kitchen-2"], 50)
        assert wait_for(lambda: len(api.events_for("kitchen-2")) == 50, 30), stderr_of(
            tmp_path / "spool"
        )
    finally:
        assert stop(proc) == 0
    assert api.events_for("garage-1") == []


def test_an_entry_that_is_not_an_event_is_counted_and_acked(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """An entry without key/value/epoch is dropped with an error and counted; the others flow."""
    write(server.url, ["pi0"], 10)
    server.client().xadd("isstreamer:pi0", {"hello": "world"})
    server.client().xadd("isstreamer:pi0", {"key": "k", "value": "not json", "epoch": "1"})
    write(server.url, ["pi0"], 10, 10)
    done = run_relay(api, tmp_path / "spool", server.url)
    assert done.returncode == 0, done.stderr
    assert "invalid 2" in done.stderr and "an entry without key" in done.stderr
    assert len(api.events_for("pi0")) == 20 and pending(server.client(), ["pi0"]) == 0


def test_receiver_down_the_relay_spools_acks_and_replays(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """With the receiver failing, entries go to the relay's spool and are acked; once it is back
    the spool is replayed and every event arrives."""
    write(server.url, ["pi0", "pi1"], 2000)
    api.fail(503, times=None)
    relay = in_process_relay(server.url, api, tmp_path / "spool")
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    client = server.client()
    try:
        assert wait_for(
            lambda: pending(client, ["pi0", "pi1"]) == 0 and relay.counts["acknowledged"] == 4000,
            30,
        ), relay.counts
        assert relay.streamer.stats()["spool_files"] > 0 and api.events == []
        api.clear()
        write(server.url, ["pi0", "pi1"], 500, 2000)  # live traffic during the replay
        assert wait_for(delivered(api, client, ["pi0", "pi1"], 2500), 30), relay.streamer.stats()
    finally:
        relay.stop.set()
        thread.join(30)
        relay.streamer.close(5)
    assert not thread.is_alive()
    for bucket in ("pi0", "pi1"):
        assert Counter(pairs(api, bucket)) == expected(2500)  # nothing twice
    assert relay.streamer.stats()["spool_files"] == 0


@pytest.mark.slow
def test_redis_down_at_start_and_restarted_mid_relay(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """A relay started before Redis waits for it, rides out a restart, and never exits on it."""
    server.stop()
    spool = tmp_path / "spool"
    proc = start_relay(api, spool, server.url)
    try:
        assert wait_for(lambda: "Connection refused" in stderr_of(spool), 30)
        server.start()
        write(server.url, ["pi0"], 500)
        assert wait_for(delivered(api, server.client(), ["pi0"], 500), 30), stderr_of(spool)
        server.restart()  # RDB saved on SIGTERM: the group and its position survive
        write(server.url, ["pi0"], 500, 500)
        assert wait_for(delivered(api, server.client(), ["pi0"], 1000), 30), stderr_of(spool)
        assert proc.poll() is None
    finally:
        assert stop(proc) == 0
    assert Counter(pairs(api, "pi0")) == expected(1000)


@pytest.mark.slow
def test_sigterm_finishes_the_read_acks_and_exits_0(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """SIGTERM mid-stream: the in-flight read is delivered and acked, exit 0 within the deadline."""
    write(server.url, ["pi0"], 20_000)
    api.delay(0.02, times=None)
    proc = start_relay(api, tmp_path / "spool", server.url, "--batch", "500", "--deadline", "5")
    assert wait_for(lambda: len(api.events) > 1000, 30)
    started = time.monotonic()
    assert stop(proc, timeout=20) == 0
    assert time.monotonic() - started < 15
    client = server.client()
    acked = client.xinfo_groups("isstreamer:pi0")[0]
    assert pending(client, ["pi0"]) == 0
    # Everything the group has delivered (and acked) reached the receiver, nothing more.
    delivered_pairs = set(pairs(api, "pi0"))
    read = client.xrange("isstreamer:pi0", max=acked["last-delivered-id"])
    assert {(f["key"], float(f["epoch"])) for _, f in read} <= delivered_pairs
    assert "forwarded" in stderr_of(tmp_path / "spool")


@pytest.mark.slow
def test_sigterm_while_the_receiver_hangs_spools_acks_and_exits_0(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """Receiver hanging at SIGTERM: within --deadline the read in flight is spooled and acked."""
    write(server.url, ["pi0"], 300)
    api.hang(times=None)
    spool = tmp_path / "spool"
    proc = start_relay(api, spool, server.url, "--deadline", "2")
    try:
        assert api.wait_for_requests(1, timeout=30, path="/api/events")
    finally:
        started = time.monotonic()
        code = stop(proc, timeout=30)
        api.clear()
    assert code == 0, stderr_of(spool)
    assert time.monotonic() - started < 10  # 2 s deadline, a 0.1 s read, a disk write
    assert pending(server.client(), ["pi0"]) == 0
    spilled = sum(len(json.loads(f.read_text())["events"]) for f in spool.glob("*.json"))
    assert spilled == 300


@pytest.mark.slow
def test_sigterm_while_idle_exits_0_at_once(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """An idle relay (in XREADGROUP with the default 2 s block) exits 0 soon after SIGTERM."""
    write(server.url, ["pi0"], 10)
    proc = subprocess.Popen(
        relay_cmd(server.url),
        env=relay_env(api, tmp_path / "spool"),
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert wait_for(lambda: len(api.events) == 10, 30)
    time.sleep(0.3)  # let it go back to a blocking read: the state under test
    started = time.monotonic()
    assert stop(proc) == 0
    assert time.monotonic() - started < 8


@pytest.mark.slow
def test_sigusr1_logs_the_stats(server: RedisServer, api: ApiServer, tmp_path: Path) -> None:
    """SIGUSR1 makes a running relay log its counters and per-stream pending and lag."""
    write(server.url, ["pi0"], 100)
    spool = tmp_path / "spool"
    proc = start_relay(api, spool, server.url)
    try:
        assert wait_for(lambda: len(api.events) == 100, 30)
        proc.send_signal(signal.SIGUSR1)
        assert wait_for(lambda: "relay stats" in stderr_of(spool), 10)
    finally:
        assert stop(proc) == 0
    line = next(x for x in stderr_of(spool).splitlines() if "relay stats" in x)
    stats = json.loads(line.split("relay stats: ", 1)[1])
    assert stats["forwarded"] == stats["acknowledged"] == 100
    assert stats["streams"][0]["pending"] == 0 and stats["delivery"]["sent"] == 100


@pytest.mark.slow
def test_stats_bucket_gets_the_relays_metrics(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """--stats-bucket logs forwarded, acknowledged and per-stream lag as events to that bucket."""
    write(server.url, ["pi0"], 100)
    proc = start_relay(
        api,
        tmp_path / "spool",
        server.url,
        "--stats-bucket",
        "relay-metrics",
        "--stats-interval",
        "0.2",
    )
    try:
        assert wait_for(
            lambda: any(
                e["key"] == "relay_forwarded" and e["value"] == 100
                for e in api.events_for("relay-metrics")
            ),
            30,
        )
    finally:
        assert stop(proc) == 0
    keys = {e["key"] for e in api.events_for("relay-metrics")}
    assert {"relay_acknowledged", "pi0_pending", "pi0_lag"} <= keys
    assert len(api.events_for("pi0")) == 100


@pytest.mark.slow
def test_source_url_can_come_from_the_environment(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """ISSTREAMER_RELAY_FROM stands for --from, so a password stays out of the command line."""
    write(server.url, ["pi0"], 20)
    env = dict(relay_env(api, tmp_path / "spool"), ISSTREAMER_RELAY_FROM=server.url)
    done = run_cli(env, "relay", "--once")
    assert done.returncode == 0, done.stderr
    assert len(api.events_for("pi0")) == 20


@pytest.mark.slow
def test_source_password_is_never_shown_and_a_wrong_one_is_exit_2(
    tmp_path: Path,
    api: ApiServer,
) -> None:
    """A relay logs no Redis password; a refused one ends it with exit 2 and a clear message."""
    require(REDIS_SERVER is not None, "redis-server is not on PATH (apt-get install redis-server)")
    with RedisServer(tmp_path / "redis", password="pw-Rl77-secret") as srv:
        write(srv.url, ["pi0"], 20)
        done = run_relay(api, tmp_path / "spool", srv.url, "-vv")
        assert done.returncode == 0 and len(api.events_for("pi0")) == 20, done.stderr
        wrong = run_relay(api, tmp_path / "spool", srv.url_with("pw-Wx12-also-secret"))
    assert wrong.returncode == 2 and "refused the credentials" in wrong.stderr, wrong.stderr
    for output in (done.stderr, done.stdout, wrong.stderr, wrong.stdout):
        assert "pw-Rl77-secret" not in output and "pw-Wx12-also-secret" not in output


@pytest.mark.slow
def test_bad_command_line_is_exit_2(server: RedisServer, api: ApiServer, tmp_path: Path) -> None:
    """An http:// source, a batch out of range or no source at all is exit 2."""
    for args in (["--from", "http://x/"], ["--from", server.url, "--batch", "0"], []):
        done = run_cli(relay_env(api, tmp_path / "s"), "relay", *args)
        assert done.returncode == 2, done.stderr
