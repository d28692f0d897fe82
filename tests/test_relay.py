"""`isstreamer relay` against a real redis-server, a real 3-node Redis Cluster, the events API."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from apiserver import ApiServer
from rediscluster import require
from redisserver import REDIS_SERVER, RedisServer

import isstreamer
from isstreamer.cli import main
from isstreamer.sinks.base import Bucket

redis = pytest.importorskip("redis")

ACCESS_KEY = "test-access-key"
GROUP = "relays"


# ---- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A standalone redis-server on a free port, killed after the test."""
    require(REDIS_SERVER is not None, "redis-server is not on PATH (apt-get install redis-server)")
    with RedisServer(tmp_path / "redis") as srv:
        yield srv


def device_events(n: int, start: int = 0) -> list[tuple]:
    """Readings with distinct (key, epoch) pairs and values of every JSON type."""
    values = [21.5, True, "on", 42, False, -3]
    return [
        (f"sensor{i % 5}", values[i % len(values)], 1_700_000_000.0 + i / 1000)
        for i in range(start, start + n)
    ]


def write(url: str, buckets: list[str], per_bucket: int, start: int = 0) -> None:
    """What a fleet of devices writes: per_bucket events to each bucket's stream."""
    if url.startswith("redis+cluster"):
        from isstreamer.sinks.redis_cluster import RedisClusterSink as sink_type
    else:
        from isstreamer.sinks.redis import RedisSink as sink_type
    sink = sink_type(url, timeout=5)
    try:
        for bucket in buckets:
            for offset in range(start, start + per_bucket, 500):
                batch = device_events(min(500, start + per_bucket - offset), offset)
                assert sink.send(Bucket(bucket, bucket.upper()), batch).ok
    finally:
        sink.close()


def pairs(api: ApiServer, bucket: str) -> list[tuple]:
    """(key, epoch) of every event the receiver accepted for bucket."""
    return [(e["key"], e["epoch"]) for e in api.events_for(bucket)]


def expected(per_bucket: int) -> Counter:
    return Counter((k, e) for k, _, e in device_events(per_bucket))


def relay_env(api: ApiServer, spool: Path) -> dict[str, str]:
    return dict(
        os.environ,
        ISSTREAMER_API_BASE=api.url,
        ISSTREAMER_ACCESS_KEY=ACCESS_KEY,
        ISSTREAMER_SPILL_DIR=str(spool),
    )


def relay_args(url: str, *args: str) -> list[str]:
    return ["relay", "--from", url, "--group", GROUP, *args]


def relay_cmd(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "isstreamer", *relay_args(url, *args)]


@dataclass
class Done:
    """What a run of the command left: its exit status and its output."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(env: dict[str, str], *argv: str) -> Done:
    """`isstreamer ARGV` in this process, with ``env`` as its whole environment (fast: no
    interpreter to start). Relays that must be signalled or killed run as processes instead."""
    saved = dict(os.environ)
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.clear()
        os.environ.update(env)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Done(code, out.getvalue(), err.getvalue())


def run_relay(api: ApiServer, spool: Path, url: str, *args: str) -> Done:
    """`isstreamer relay --once ...` to the end; its exit status is asserted by the caller."""
    return run_cli(relay_env(api, spool), *relay_args(url, "--once", *args))


def start_relay(api: ApiServer, spool: Path, url: str, *args: str) -> subprocess.Popen:
    """A long-running relay subprocess; stderr goes to a file beside its spool."""
    spool.mkdir(parents=True, exist_ok=True)
    err = open(spool.parent / f"{spool.name}.stderr", "w")  # noqa: SIM115 (closed with the proc)
    proc = subprocess.Popen(
        relay_cmd(url, "--block-ms", "100", *args),
        env=relay_env(api, spool),
        stdout=subprocess.DEVNULL,
        stderr=err,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    err.close()
    return proc


def stderr_of(spool: Path) -> str:
    return (spool.parent / f"{spool.name}.stderr").read_text()


def consumer_names(server: RedisServer) -> set[str]:
    """The consumers of the group on pi0's stream; none before a relay has made the group."""
    try:
        consumers = server.client().xinfo_consumers("isstreamer:pi0", GROUP)
    except redis.exceptions.ResponseError:  # NOGROUP
        return set()
    return {c["name"] for c in consumers}


def pending(client: Any, buckets: list[str]) -> int:
    """Entries read by some relay of the group and not acknowledged yet."""
    total = 0
    for bucket in buckets:
        try:
            total += client.xpending(f"isstreamer:{bucket}", GROUP)["pending"]
        except redis.ResponseError:  # no group yet
            return -1
    return total


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Wait until condition() holds (checked every 50 ms) or the timeout passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def delivered(api: ApiServer, client: Any, buckets: list[str], per_bucket: int) -> Callable:
    """A condition: every bucket's events arrived (duplicates allowed) and nothing is pending."""
    want = set(expected(per_bucket))

    def check() -> bool:
        return all(set(pairs(api, b)) >= want for b in buckets) and pending(client, buckets) == 0

    return check


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout)


def fast_policy() -> Any:
    """Retries and probes in milliseconds, so a receiver outage takes no test time."""
    return isstreamer.RetryPolicy(
        attempts=2, initial_wait=0.01, max_wait=0.05, jitter=0.0, probe_initial=0.05, probe_max=0.2
    )


def in_process_relay(url: str, api: ApiServer, spool: Path, **options: Any) -> Any:
    """A Relay in this process (its Streamer with fast retries) and its stop Event."""
    from isstreamer.relay import Relay, RelayOptions
    from isstreamer.relay_source import Source, connect

    make_client, prefix, is_cluster = connect(url, block_ms=options.get("block_ms", 100))
    source = Source(
        make_client(),
        prefix=prefix,
        group=GROUP,
        consumer=options.pop("consumer", "r1"),
        cluster=is_cluster,
    )
    streamer = isstreamer.Streamer(
        bucket_key="relay",
        api_base=api.url,
        access_key=ACCESS_KEY,
        spill_dir=str(spool),
        buffer_size=1000,
        retry_policy=fast_policy(),
    )
    options.setdefault("block_ms", 100)
    return Relay(source, streamer, RelayOptions(**options))


@pytest.fixture
def api() -> Iterator[ApiServer]:
    """The local events API server accepting ACCESS_KEY."""
    with ApiServer(access_keys=(ACCESS_KEY,)) as srv:
        yield srv


# ---- standalone Redis ----------------------------------------------------------------------------


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
def test_two_relays_share_a_group_and_deliver_each_entry_once(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """Two relays of one group split the work while devices write: no loss, no duplicate."""
    buckets = [f"pi{i}" for i in range(4)]
    write(server.url, buckets, 500)
    relays = [
        start_relay(
            api, tmp_path / f"spool{i}", server.url, "--consumer", f"r{i}", "--batch", "200"
        )
        for i in range(2)
    ]
    try:
        # Both have read the group before the devices go on (a relay slow to start would
        # otherwise find nothing left, which proves nothing about sharing).
        assert wait_for(lambda: consumer_names(server) == {"r0", "r1"}, 30)
        write(server.url, buckets, 2500, 500)
        assert wait_for(delivered(api, server.client(), buckets, 3000), 60)
    finally:
        codes = [stop(p) for p in relays]
    assert codes == [0, 0]
    for bucket in buckets:
        assert Counter(pairs(api, bucket)) == expected(3000), bucket


@pytest.mark.slow
def test_sigkill_of_one_relay_the_other_reclaims_its_entries(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """A relay killed with SIGKILL mid-stream loses nothing: the other claims its pending entries;
    duplicates stay within the killed relay's unacknowledged window (2 reads of --batch)."""
    buckets = ["pi0", "pi1"]
    batch = 200
    api.delay(0.05, times=None)  # a slow receiver: the victim always has reads in flight
    victim = start_relay(
        api, tmp_path / "spool0", server.url, "--consumer", "victim", "--batch", str(batch)
    )
    client = server.client()
    write(server.url, buckets, 3000)
    assert wait_for(lambda: 0 < len(api.events) and pending(client, buckets) > 0, 30)
    victim.kill()
    victim.wait(10)
    left = pending(client, buckets)
    assert left > 0
    api.clear()
    survivor = start_relay(
        api,
        tmp_path / "spool1",
        server.url,
        "--consumer",
        "survivor",
        "--claim-idle",
        "0.5",
        "--batch",
        str(batch),
    )
    try:
        assert wait_for(delivered(api, client, buckets, 3000), 60), stderr_of(tmp_path / "spool1")
    finally:
        assert stop(survivor) == 0
    claimed = int(stderr_of(tmp_path / "spool1").split("claimed ")[1].split(",")[0])
    assert claimed == left  # exactly the victim's pending entries were taken over
    total = sum(len(api.events_for(b)) for b in buckets)
    duplicates = total - 2 * 3000
    assert 0 <= duplicates <= 2 * batch, duplicates
    for bucket in buckets:
        assert set(Counter(pairs(api, bucket))) == set(expected(3000))
    victim_entries = [
        c for c in client.xinfo_consumers("isstreamer:pi0", GROUP) if c["name"] == "victim"
    ]
    assert victim_entries and victim_entries[0]["pending"] == 0


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
def test_trim_removes_what_every_group_has_processed(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """--trim drops relayed entries, but never ones another group has not processed yet."""
    write(server.url, ["pi0"], 1000)
    client = server.client()
    client.xgroup_create("isstreamer:pi0", "dashboards", id="0")
    client.xreadgroup("dashboards", "d1", {"isstreamer:pi0": ">"}, count=400)
    oldest_needed = client.xpending("isstreamer:pi0", "dashboards")["min"]
    done = run_relay(api, tmp_path / "spool", server.url, "--trim")
    assert done.returncode == 0, done.stderr
    assert len(api.events_for("pi0")) == 1000
    assert client.xlen("isstreamer:pi0") == 1000  # the dashboards group still needs them all
    client.xgroup_destroy("isstreamer:pi0", "dashboards")
    write(server.url, ["pi0"], 10, 1000)
    done = run_relay(api, tmp_path / "spool", server.url, "--trim")
    assert done.returncode == 0, done.stderr
    assert client.xlen("isstreamer:pi0") <= 1  # at most the last delivered entry is kept
    assert oldest_needed


def test_status_prints_pending_and_lag_per_stream(
    server: RedisServer,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """--status shows length, pending, lag and consumers of the group for every bucket stream."""
    write(server.url, ["pi0", "pi1"], 100)
    client = server.client()
    client.xgroup_create("isstreamer:pi0", GROUP, id="0")
    client.xreadgroup(GROUP, "r9", {"isstreamer:pi0": ">"}, count=30)
    done = run_cli(relay_env(api, tmp_path / "s"), *relay_args(server.url, "--status"))
    assert done.returncode == 0, done.stderr
    rows = {r["stream"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert rows["isstreamer:pi0"]["pending"] == 30 and rows["isstreamer:pi0"]["lag"] == 70
    assert rows["isstreamer:pi1"] == {"stream": "isstreamer:pi1", "length": 100}
    assert api.events == []


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


# ---- Redis Cluster -------------------------------------------------------------------------------


def test_cluster_devices_across_slots_relayed_by_two_relays(
    clean_cluster: Any,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """Buckets on all three nodes, two relays reading the cluster: each event arrives once."""
    buckets = [f"pi{i}" for i in range(9)]
    write(clean_cluster.url, buckets, 600)
    assert len({clean_cluster.node_for(f"isstreamer:{b}").port for b in buckets}) == 3
    relays = [
        start_relay(
            api, tmp_path / f"spool{i}", clean_cluster.url, "--consumer", f"r{i}", "--batch", "300"
        )
        for i in range(2)
    ]
    try:
        assert wait_for(delivered(api, clean_cluster.client(), buckets, 600), 60)
    finally:
        codes = [stop(p) for p in relays]
    assert codes == [0, 0]
    for bucket in buckets:
        assert Counter(pairs(api, bucket)) == expected(600), bucket


def test_cluster_node_killed_while_relaying_then_back(
    clean_cluster: Any,
    api: ApiServer,
    tmp_path: Path,
) -> None:
    """A node dies mid-relay: the other nodes' buckets keep flowing; back, its bucket completes."""
    buckets = [f"pi{i}" for i in range(6)]
    write(clean_cluster.url, buckets, 300)
    victim = clean_cluster.node_for("isstreamer:pi0")
    others = [b for b in buckets if clean_cluster.node_for(f"isstreamer:{b}") is not victim]
    on_victim = [b for b in buckets if b not in others]
    spool = tmp_path / "spool"
    proc = start_relay(api, spool, clean_cluster.url)
    try:
        assert wait_for(delivered(api, clean_cluster.client(), buckets, 300), 60)
        victim.kill()
        write(clean_cluster.url, others, 300, 300)  # devices on the live nodes go on
        assert wait_for(lambda: all(len(api.events_for(b)) == 600 for b in others), 60), stderr_of(
            spool
        )
        victim.start()
        clean_cluster.wait_ok()
        write(clean_cluster.url, buckets, 300, 600)
        assert wait_for(
            lambda: (
                all(len(api.events_for(b)) == 900 for b in others)
                and all(len(api.events_for(b)) == 600 for b in on_victim)
            ),
            60,
        ), stderr_of(spool)
    finally:
        assert stop(proc) == 0
    assert "streams unreadable" in stderr_of(spool)
    client = clean_cluster.client()
    assert pending(client, buckets) == 0
    for bucket in others:
        assert Counter(pairs(api, bucket)) == expected(900)
    for bucket in on_victim:
        assert Counter(pairs(api, bucket)) == Counter(
            (k, e) for k, _, e in device_events(300) + device_events(300, 600)
        )
