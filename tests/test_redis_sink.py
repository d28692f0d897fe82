"""The Redis Streams sink against a real redis-server: layout, types, outcomes, secrets."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from redisserver import REDIS_SERVER, RedisServer

import isstreamer
from isstreamer.sinks.base import Bucket, Outcome

ON_CI = os.environ.get("CI", "").lower() == "true"
PASSWORD = "pw-Zq81-never-shown"
WRONG_PASSWORD = "pw-Xk55-also-never-shown"


def _require(ok: bool, reason: str) -> None:
    # CI must run these tests; a laptop without the Debian package just skips them.
    if not ok:
        if ON_CI:
            pytest.fail(f"{reason} (CI=true: required)")
        pytest.skip(reason)


@pytest.fixture
def redis_py() -> Any:
    """The redis-py module, or skip (fail on CI) without it."""
    try:
        import redis
    except ImportError:
        _require(False, "redis-py is not installed: pip install 'isstreamer-agent[redis]'")
    return redis


@pytest.fixture
def server(tmp_path: Path, redis_py: Any) -> Iterator[RedisServer]:
    """A redis-server on a free port with its own directory, killed after the test."""
    _require(REDIS_SERVER is not None, "redis-server is not on PATH (apt-get install redis-server)")
    with RedisServer(tmp_path / "redis") as srv:
        yield srv


@pytest.fixture
def make_sink(redis_py: Any) -> Iterator[Callable[..., Any]]:
    """Build RedisSinks that are closed after the test."""
    from isstreamer.sinks.redis import RedisSink

    sinks: list[Any] = []

    def make(url: str, **kwargs: Any) -> Any:
        sink = RedisSink(url, **kwargs)
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close()


VALUES = [21.5, True, "on", 42, False, -3, "21.5", 0.1, 'ünïcode "quoted"\n', 10**15]


def events(n: int, start: int = 0) -> list[tuple]:
    """n events with distinct (key, epoch) pairs and values of every type."""
    return [
        (f"sensor{i % 7}", VALUES[i % len(VALUES)], 1_700_000_000.0 + i / 1000)
        for i in range(start, start + n)
    ]


def test_twenty_thousand_events_arrive_with_their_types(
    server: RedisServer,
    make_sink: Any,
) -> None:
    """20,000 events sent in batches give XLEN 20,000 and every value keeps its JSON type."""
    sink = make_sink(server.url)
    batch = events(20_000)
    for i in range(0, len(batch), 1000):
        assert sink.send(Bucket("pi1", "Pi one"), batch[i : i + 1000]).outcome is Outcome.OK
    client = server.client()
    assert client.xlen("isstreamer:pi1") == 20_000
    entries = client.xrange("isstreamer:pi1")
    got = [(f["key"], json.loads(f["value"]), float(f["epoch"])) for _, f in entries]
    assert got == batch
    assert [type(v) for _, v, _ in got[:10]] == [type(v) for v in VALUES]
    assert entries[1][1]["value"] == "true" and entries[2][1]["value"] == '"on"'


def test_bucket_registry_holds_the_bucket(server: RedisServer, make_sink: Any) -> None:
    """HSET isstreamer:buckets maps each bucket key to its name, written once per sink."""
    sink = make_sink(server.url)
    sink.send(Bucket("pi1", "Pi one"), events(3))
    sink.send(Bucket("pi2"), events(3))
    client = server.client()
    assert client.hgetall("isstreamer:buckets") == {"pi1": "Pi one", "pi2": "pi2"}
    client.delete("isstreamer:buckets")
    sink.send(Bucket("pi1", "Pi one"), events(3))  # remembered: no second HSET
    assert client.hgetall("isstreamer:buckets") == {}


def test_prefix_is_configurable(server: RedisServer, make_sink: Any) -> None:
    """A custom prefix names both the stream and the registry."""
    sink = make_sink(server.url, prefix="fleet:{eu}:")
    assert sink.send(Bucket("pi1", "Pi"), events(5)).ok
    client = server.client()
    assert client.xlen("fleet:{eu}:pi1") == 5
    assert client.hget("fleet:{eu}:buckets", "pi1") == "Pi"


def test_consumer_group_reads_and_acks_every_entry(server: RedisServer, make_sink: Any) -> None:
    """Two consumers of one group read each entry once, XACK them all, and none stays pending."""
    sink = make_sink(server.url)
    for i in range(0, 5000, 1000):
        assert sink.send(Bucket("pi1"), events(1000, i)).ok
    client = server.client()
    client.xgroup_create("isstreamer:pi1", "workers", id="0", mkstream=True)
    seen: list[tuple] = []
    consumers = ["c1", "c2"]
    while True:
        got = 0
        for name in consumers:
            reply = client.xreadgroup("workers", name, {"isstreamer:pi1": ">"}, count=700)
            for _, entries in reply:
                seen += [(fields["key"], fields["epoch"]) for _, fields in entries]
                ids = [entry_id for entry_id, _ in entries]
                assert client.xack("isstreamer:pi1", "workers", *ids) == len(ids)
                got += len(ids)
        if not got:
            break
    assert len(seen) == len(set(seen)) == 5000
    assert client.xpending("isstreamer:pi1", "workers")["pending"] == 0


def test_stopped_server_is_retry_then_restart_recovers(server: RedisServer, make_sink: Any) -> None:
    """With redis-server stopped send() quickly returns RETRY; after a restart it delivers again."""
    sink = make_sink(server.url, timeout=1.0)
    assert sink.send(Bucket("pi1"), events(100)).ok
    server.stop()
    started = time.monotonic()
    result = sink.send(Bucket("pi1"), events(100, 100))
    assert result.outcome is Outcome.RETRY, result
    # Generous for a busy machine: a refused connection is one attempt, with no backoff.
    assert time.monotonic() - started < 5.0
    assert "ConnectionError" in result.message
    server.start()  # same port, same data
    assert sink.send(Bucket("pi1"), events(100, 200)).ok
    assert server.client().xlen("isstreamer:pi1") == 200


def test_hung_server_is_retry_within_the_timeout(server: RedisServer, make_sink: Any) -> None:
    """A frozen redis-server (SIGSTOP) makes send() return RETRY after the timeout, not hang."""
    sink = make_sink(server.url, timeout=0.5)
    assert sink.send(Bucket("pi1"), events(10)).ok
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        result = sink.send(Bucket("pi1"), events(10, 10))
        elapsed = time.monotonic() - started
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    assert result.outcome is Outcome.RETRY, result
    assert elapsed < 10.0  # generous on a busy machine; the frozen server never answers
    assert sink.send(Bucket("pi1"), events(10, 20)).ok  # a fresh connection after the timeout


@pytest.mark.parametrize("password", [WRONG_PASSWORD, None], ids=["wrong", "missing"])
def test_refused_password_is_auth_and_never_shown(
    tmp_path: Path,
    redis_py: Any,
    make_sink: Any,
    caplog: pytest.LogCaptureFixture,
    password: Any,
) -> None:
    """A wrong or missing password gives AUTH; no message, address, repr or log holds a password."""
    _require(REDIS_SERVER is not None, "redis-server is not on PATH (apt-get install redis-server)")
    caplog.set_level(logging.DEBUG)  # every logger, redis-py's included
    with RedisServer(tmp_path / "redis", password=PASSWORD) as server:
        sink = make_sink(server.url_with(password), timeout=2.0)
        result = sink.send(Bucket("pi1"), events(10))
        assert result.outcome is Outcome.AUTH, result
        assert sink.address in result.message
        shown = " ".join([result.message, str(result), sink.address, repr(sink), caplog.text])
        assert PASSWORD not in shown and WRONG_PASSWORD not in shown
        good = make_sink(server.url)
        assert good.send(Bucket("pi1"), events(10)).ok
        assert PASSWORD not in good.address + repr(good)
        assert server.client().xlen("isstreamer:pi1") == 10


def test_maxlen_trims_approximately(server: RedisServer, make_sink: Any) -> None:
    """With maxlen set the stream is trimmed to about that length; unset it keeps everything."""
    trimmed = make_sink(server.url, maxlen=1000)
    whole = make_sink(server.url, prefix="all:")
    for i in range(0, 10_000, 1000):
        assert trimmed.send(Bucket("pi1"), events(1000, i)).ok
        assert whole.send(Bucket("pi1"), events(1000, i)).ok
    client = server.client()
    assert 1000 <= client.xlen("isstreamer:pi1") < 1500
    assert client.xlen("all:pi1") == 10_000
    last = client.xrevrange("isstreamer:pi1", count=1)[0][1]
    assert float(last["epoch"]) == events(1, 9999)[0][2]  # trimming drops the oldest


def test_prefix_and_maxlen_can_come_from_the_url(server: RedisServer, make_sink: Any) -> None:
    """?prefix=...&maxlen=... in the URL configure the sink and stay out of its address."""
    sink = make_sink(server.url + "?prefix=fleet:&maxlen=1000")
    assert (sink.prefix, sink.maxlen, sink.address) == ("fleet:", 1000, server.url)
    for i in range(0, 5000, 1000):
        assert sink.send(Bucket("pi1"), events(1000, i)).ok
    assert 1000 <= server.client().xlen("fleet:pi1") < 1500
    with pytest.raises(ValueError, match="maxlen"):
        make_sink(server.url + "?maxlen=lots")


def test_key_of_the_wrong_type_is_bad(server: RedisServer, make_sink: Any) -> None:
    """A stream key holding a string is refused for ever: BAD with the server's message."""
    server.client().set("isstreamer:pi1", "not a stream")
    result = make_sink(server.url).send(Bucket("pi1"), events(3))
    assert result.outcome is Outcome.BAD and "WRONGTYPE" in result.message


def _fill_to_the_limit(server: RedisServer, headroom_bytes: int) -> None:
    """Set maxmemory (noeviction) so that only about ``headroom_bytes`` more fit."""
    client = server.client()
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", str(used + headroom_bytes))


@pytest.mark.slow
def test_error_half_way_through_a_pipeline_fails_only_the_refused_entries(
    server: RedisServer,
    make_sink: Any,
) -> None:
    """OOM half-way through a batch: failed names exactly the entries missing from the stream."""
    sink = make_sink(server.url)
    assert sink.send(Bucket("pi1"), events(10)).ok  # registry written, connection warm
    _fill_to_the_limit(server, 200_000)
    batch = events(20_000, 10)
    result = sink.send(Bucket("pi1"), batch)
    assert result.outcome is Outcome.RETRY and result.partial, result
    assert "OutOfMemoryError" in result.message and "of 20000 entries were stored" in result.message
    stored = set(stream_pairs(server)[10:])
    failed = set(result.failed or ())
    assert 0 < len(failed) < len(batch)
    assert stored == {(k, e) for i, (k, _, e) in enumerate(batch) if i not in failed}
    # Space again: re-sending only the failed ones completes the stream with no duplicate.
    server.client().config_set("maxmemory", "0")
    assert sink.send(Bucket("pi1"), [batch[i] for i in sorted(failed)]).ok
    pairs = stream_pairs(server)
    assert len(pairs) == len(set(pairs)) == 20_010


def test_pipeline_refused_whole_is_not_partial(server: RedisServer, make_sink: Any) -> None:
    """When every entry is refused the result is a plain whole-batch failure (failed is None)."""
    sink = make_sink(server.url)
    assert sink.send(Bucket("pi1"), events(1)).ok
    _fill_to_the_limit(server, 0)
    result = sink.send(Bucket("pi1"), events(50, 1))
    assert result.outcome is Outcome.RETRY and result.failed is None
    assert "0 of 50 entries were stored" in result.message


@pytest.mark.parametrize(
    "value", [object(), float("nan"), float("-inf")], ids=["object", "nan", "inf"]
)
def test_unencodable_value_is_bad_and_sends_nothing(
    server: RedisServer,
    make_sink: Any,
    value: Any,
) -> None:
    """A value that is not JSON (an object, NaN, inf) makes the batch BAD; nothing is written."""
    result = make_sink(server.url).send(Bucket("pi1"), [("k", 1.0, 1.0), ("k", value, 2.0)])
    assert result.outcome is Outcome.BAD, result
    assert server.client().exists("isstreamer:pi1") == 0


@pytest.mark.parametrize(
    "url, address",
    [
        ("redis://user:pa%40ss@127.0.0.1:6390/2", "redis://127.0.0.1:6390/2"),
        ("redis://:secret@localhost", "redis://localhost:6379/0"),
        (
            "rediss://default:secret@cache.example.com:6380/0?password=x",
            "rediss://cache.example.com:6380/0",
        ),
        ("redis://[::1]:7000", "redis://[::1]:7000/0"),
    ],
)
def test_address_has_no_credentials(redis_py: Any, make_sink: Any, url: str, address: str) -> None:
    """The address spill files record is the URL without user, password or query."""
    sink = make_sink(url)
    assert sink.address == address
    assert "secret" not in repr(sink) and "pa%40ss" not in repr(sink)


def test_not_a_redis_url_is_refused(redis_py: Any, make_sink: Any) -> None:
    """An http URL is a ValueError that does not echo the password."""
    with pytest.raises(ValueError) as info:
        make_sink("http://u:secret@host/")
    assert "secret" not in str(info.value)


def test_missing_redis_py_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without redis-py the ImportError says which extra to install."""
    from isstreamer.sinks import redis as redis_sink

    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"pip install 'isstreamer-agent\[redis\]'"):
        redis_sink.RedisSink("redis://127.0.0.1:1/0")


def test_example_consumer_reads_claims_and_acks(server: RedisServer, make_sink: Any) -> None:
    """example_app/redis_consumer.py handles every entry, takes over a dead consumer's, and acks."""
    sink = make_sink(server.url)
    assert sink.send(Bucket("pi1", "Pi"), events(10)).ok
    client = server.client()
    client.xgroup_create("isstreamer:pi1", "workers", id="0")
    client.xreadgroup("workers", "dead", {"isstreamer:pi1": ">"}, count=3)  # never acked
    script = Path(__file__).resolve().parent.parent / "example_app" / "redis_consumer.py"
    env = dict(os.environ, REDIS_URL=server.url, ISSTREAMER_BUCKET_KEY="pi1")
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            "--group",
            "workers",
            "--once",
            "--block",
            "50",
            "--claim-idle",
            "0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 10 and "sensor0=21.5 (float)" in lines[0] and "(bool)" in lines[1]
    assert client.xpending("isstreamer:pi1", "workers")["pending"] == 0


# ---- through the Streamer ------------------------------------------------------------------

needs_streamer = pytest.mark.skipif(
    not hasattr(isstreamer, "Streamer"), reason="isstreamer.Streamer has not landed yet"
)


def fast_policy() -> Any:
    """Retries and probes in milliseconds, so outages and recoveries take no test time."""
    return isstreamer.RetryPolicy(
        attempts=2, initial_wait=0.01, max_wait=0.05, jitter=0.0, probe_initial=0.05, probe_max=0.2
    )


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Wait until condition() holds (checked every 20 ms) or the timeout passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def all_delivered(streamer: Any, total: int) -> Callable[[], bool]:
    """A condition: ``total`` events sent live or replayed, and nothing left in the spool."""

    def check() -> bool:
        stats = streamer.stats()
        return stats["sent"] + stats["replayed"] == total and stats["spool_files"] == 0

    return check


def log_events(streamer: Any, batch: list[tuple]) -> None:
    for key, value, epoch in batch:
        streamer.log(key, value, epoch)


def stream_pairs(server: RedisServer, stream: str = "isstreamer:pi1") -> list[tuple]:
    """Every (key, epoch) in the stream, in stream order."""
    return [(f["key"], float(f["epoch"])) for _, f in server.client().xrange(stream)]


@needs_streamer
def test_streamer_delivers_twenty_thousand_events(server: RedisServer, tmp_path: Path) -> None:
    """20,000 events through Streamer(api_base=redis://..., buffer_size=1000) give XLEN 20,000."""
    streamer = isstreamer.Streamer(
        bucket_name="Pi one",
        bucket_key="pi1",
        api_base=server.url,
        buffer_size=1000,
        spill_dir=str(tmp_path / "spool"),
    )
    batch = events(20_000)
    log_events(streamer, batch)
    assert streamer.flush(timeout=30)
    # Logging faster than max_buffer (10,000) allows moves the oldest events to the spool,
    # and the worker replays them right after: both paths must end up in the stream.
    assert wait_for(all_delivered(streamer, 20_000)), streamer.stats()
    stats = streamer.stats()
    assert streamer.close(timeout=10)
    assert stats["dropped"] == 0, stats
    client = server.client()
    assert client.xlen("isstreamer:pi1") == 20_000
    assert client.hget("isstreamer:buckets", "pi1") == "Pi one"
    values = [json.loads(f["value"]) for _, f in client.xrange("isstreamer:pi1", count=10)]
    assert values == VALUES


@needs_streamer
def test_streamer_spills_an_outage_and_replays_it_after_restart(
    server: RedisServer,
    tmp_path: Path,
) -> None:
    """Events logged while redis-server is down are spilled, then replayed once it is back."""
    streamer = isstreamer.Streamer(
        bucket_key="pi1",
        api_base=server.url,
        buffer_size=1000,
        spill_dir=str(tmp_path / "spool"),
        timeout=1.0,
        retry_policy=fast_policy(),
    )
    before, during, after = events(5000), events(5000, 5000), events(2000, 10_000)
    log_events(streamer, before)
    assert streamer.flush(timeout=30)
    server.stop()  # graceful: what was written before the outage is kept
    log_events(streamer, during)
    assert streamer.flush(timeout=30)  # True: every event is sent or on disk
    stats = streamer.stats()
    assert stats["spilled"] == 5000 and stats["spool_files"] > 0, stats
    server.start()  # same port
    log_events(streamer, after)
    assert streamer.flush(timeout=30)
    # Until a probe sees the server back, new batches go to the spool too; either way all
    # 12,000 must arrive, live or replayed, and the spool must end up empty.
    assert wait_for(all_delivered(streamer, 12_000)), streamer.stats()
    stats = streamer.stats()
    assert streamer.close(timeout=10)
    assert stats["replayed"] >= 5000 and stats["dropped"] == 0, stats
    pairs = stream_pairs(server)
    expected = {(k, e) for k, _, e in before + during + after}
    assert set(pairs) == expected  # nothing lost (at least once)
    assert len(pairs) == stats["logged"] == 12_000  # no failure mid-pipeline: no duplicates


@pytest.mark.slow
@needs_streamer
def test_streamer_survives_a_stop_in_the_middle_of_a_stream(
    server: RedisServer,
    tmp_path: Path,
) -> None:
    """redis-server stopped and restarted while a thread keeps logging: every event arrives."""
    streamer = isstreamer.Streamer(
        bucket_key="pi1",
        api_base=server.url,
        buffer_size=1000,
        flush_interval=0.05,
        spill_dir=str(tmp_path / "spool"),
        timeout=1.0,
        retry_policy=fast_policy(),
    )
    batch = events(20_000)

    def produce() -> None:
        for i in range(0, len(batch), 200):
            log_events(streamer, batch[i : i + 200])
            time.sleep(0.002)  # a sensor loop, not a wait for a result

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        assert wait_for(lambda: streamer.stats()["logged"] >= 5000)
        server.stop()
        assert wait_for(lambda: streamer.stats()["spilled"] > 0)  # the outage was noticed
        server.start()
    finally:
        producer.join()
    assert streamer.flush(timeout=30)
    assert wait_for(all_delivered(streamer, 20_000)), streamer.stats()
    stats = streamer.stats()
    assert streamer.close(timeout=10)
    pairs = stream_pairs(server)
    # At least once: a batch cut off mid-pipeline is sent again, so duplicates may appear.
    assert set(pairs) == {(k, e) for k, _, e in batch}
    assert len(pairs) >= 20_000 and stats["dropped"] == 0, stats
    assert stats["spilled"] > 0 and stats["replayed"] == stats["spilled"], stats


@needs_streamer
def test_streamer_keeps_events_on_a_wrong_password(
    tmp_path: Path,
    redis_py: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refused password spills the events, logs a clear error without the password, and a
    Streamer with the right password replays them to the same Redis."""
    _require(REDIS_SERVER is not None, "redis-server is not on PATH (apt-get install redis-server)")
    caplog.set_level(logging.DEBUG)
    spool = tmp_path / "spool"
    with RedisServer(tmp_path / "redis", password=PASSWORD) as server:
        wrong = isstreamer.Streamer(
            bucket_key="pi1",
            api_base=server.url_with(WRONG_PASSWORD),
            buffer_size=100,
            spill_dir=str(spool),
            timeout=2.0,
            retry_policy=fast_policy(),
            debug_level=1,
        )
        batch = events(300)
        log_events(wrong, batch)
        assert wrong.flush(timeout=30)
        stats = wrong.stats()
        assert not wrong.close(timeout=10)  # on disk is not delivered
        assert stats["sent"] == 0 and stats["spilled"] == 300, stats
        assert server.client().exists("isstreamer:pi1") == 0
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert any("refused the credentials" in r.getMessage() for r in errors), caplog.text
        spilled = "".join(p.read_text() for p in spool.rglob("*") if p.is_file())
        shown = caplog.text + str(stats) + spilled + repr(wrong)
        assert PASSWORD not in shown and WRONG_PASSWORD not in shown

        right = isstreamer.Streamer(
            bucket_key="pi1",
            api_base=server.url,
            spill_dir=str(spool),
            use_async=False,
            retry_policy=fast_policy(),
        )
        assert right.replay(timeout=30)
        assert right.close(timeout=10)
        assert sorted(stream_pairs(server)) == sorted((k, e) for k, _, e in batch)


# ---- Redis Cluster ---------------------------------------------------------------------------


def cluster_streamer(cluster: Any, tmp_path: Path, bucket: str, **kwargs: Any) -> Any:
    """A Streamer writing to the cluster, set up as a user would: a redis+cluster:// api_base."""
    kwargs.setdefault("buffer_size", 500)
    return isstreamer.Streamer(
        bucket_key=bucket,
        bucket_name=bucket.upper(),
        api_base=cluster.url,
        timeout=2,
        spill_dir=str(tmp_path / "spool"),
        **kwargs,
    )


@pytest.mark.parametrize(
    "url, nodes, address",
    [
        (
            "redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001/",
            [("10.0.0.1", 7000), ("10.0.0.2", 7001)],
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7001/",
        ),
        (
            "rediss+cluster://u:pw@cache.example.com/?ssl_ca_certs=/x",
            [("cache.example.com", 6379)],
            "rediss+cluster://cache.example.com:6379/",
        ),
        ("redis+cluster://[::1]:7000/", [("::1", 7000)], "redis+cluster://[::1]:7000/"),
    ],
)
def test_cluster_url_names_the_startup_nodes(
    redis_py: Any, url: str, nodes: list, address: str
) -> None:
    """A cluster URL gives every startup node; its address keeps no password or query."""
    from isstreamer.sinks.redis_cluster import RedisClusterSink, parse_nodes

    assert parse_nodes(url) == nodes
    sink = RedisClusterSink(url)  # no network needed to build it
    assert sink.address == address and "pw" not in repr(sink)
    with pytest.raises(ValueError):
        parse_nodes("redis+cluster://host:port/")


def test_factory_builds_a_cluster_sink_for_cluster_schemes(redis_py: Any) -> None:
    """redis+cluster:// and rediss+cluster:// choose RedisClusterSink and need no access key."""
    from types import SimpleNamespace

    from isstreamer.sinks.factory import needs_access_key, sink_factory
    from isstreamer.sinks.redis_cluster import RedisClusterSink

    for url in ("redis+cluster://127.0.0.1:7000/", "rediss+cluster://127.0.0.1:7000/"):
        settings = SimpleNamespace(offline=False, api_base=url, access_key="")
        assert isinstance(sink_factory(settings, 1.0)(), RedisClusterSink)
        assert not needs_access_key(url)


def test_cluster_sink_writes_buckets_across_slots_and_nodes(
    clean_cluster: Any,
    make_sink: Any,
) -> None:
    """30 buckets land on all three nodes, each stream complete, the registry names them all."""
    from isstreamer.sinks.redis_cluster import RedisClusterSink

    sink = RedisClusterSink(clean_cluster.url, timeout=2)
    try:
        for b in range(30):
            assert sink.send(Bucket(f"pi{b}", f"Pi {b}"), events(200)).ok
    finally:
        sink.close()
    client = clean_cluster.client()
    assert [client.xlen(f"isstreamer:pi{b}") for b in range(30)] == [200] * 30
    assert {clean_cluster.node_for(f"isstreamer:pi{b}").port for b in range(30)} == {
        n.port for n in clean_cluster.nodes
    }
    assert client.hgetall("isstreamer:buckets") == {f"pi{b}": f"Pi {b}" for b in range(30)}
    first = client.xrange("isstreamer:pi0", count=1)[0][1]
    assert first == {"key": "sensor0", "value": "21.5", "epoch": "1700000000.0"}


def test_cluster_sink_hash_tag_prefix_puts_every_bucket_on_one_node(
    clean_cluster: Any,
) -> None:
    """A hash tag in the prefix ({fleet}:) keeps every stream and the registry on one slot."""
    from isstreamer.sinks.redis_cluster import RedisClusterSink

    sink = RedisClusterSink(clean_cluster.url + "?prefix={fleet}:", timeout=2)
    try:
        for b in range(5):
            assert sink.send(Bucket(f"pi{b}"), events(10)).ok
    finally:
        sink.close()
    keys = [f"{{fleet}}:pi{b}" for b in range(5)] + ["{fleet}:buckets"]
    assert len({clean_cluster.node_for(k).port for k in keys}) == 1


def test_cluster_node_down_is_retry_and_back_delivers(clean_cluster: Any) -> None:
    """A killed node makes sends to its slots RETRY (others still OK); back, it takes writes."""
    from isstreamer.sinks.redis_cluster import RedisClusterSink

    sink = RedisClusterSink(clean_cluster.url, timeout=2)
    try:
        assert sink.send(Bucket("pi0"), events(10)).ok
        victim = clean_cluster.node_for("isstreamer:pi0")
        other = next(
            b for b in range(1, 50) if clean_cluster.node_for(f"isstreamer:pi{b}") is not victim
        )
        victim.kill()
        result = sink.send(Bucket("pi0"), events(10, 10))
        assert result.outcome is Outcome.RETRY and "ConnectionError" in result.message
        victim.start()
        clean_cluster.wait_ok()
        assert sink.send(Bucket(f"pi{other}"), events(10)).ok
        assert sink.send(Bucket("pi0"), events(10, 10)).ok
    finally:
        sink.close()
    assert clean_cluster.client().xlen("isstreamer:pi0") == 20  # AOF: nothing lost by the kill


@needs_streamer
def test_streamer_to_a_cluster_spools_a_dead_node_and_replays_it(
    clean_cluster: Any,
    tmp_path: Path,
) -> None:
    """Devices log on while a node is dead: its bucket spills, then every event arrives once."""
    streamers = {
        b: cluster_streamer(clean_cluster, tmp_path / b, b, retry_policy=fast_policy())
        for b in ("pi0", "pi1", "pi2", "pi3", "pi4", "pi5")
    }
    victim = clean_cluster.node_for("isstreamer:pi0")
    try:
        for i in range(3):
            for streamer in streamers.values():
                log_events(streamer, events(1000, i * 1000))
            if i == 0:
                assert all(s.flush(10) for s in streamers.values())
                victim.kill()
            if i == 1:
                assert all(s.flush(10) for s in streamers.values())
                assert streamers["pi0"].stats()["spilled"] > 0
                victim.start()
                clean_cluster.wait_ok()
        for b, streamer in streamers.items():
            assert wait_for(all_delivered(streamer, 3000)), (b, streamer.stats())
    finally:
        for streamer in streamers.values():
            streamer.close(timeout=5)
    client = clean_cluster.client()
    for b in streamers:
        pairs = [(f["key"], float(f["epoch"])) for _, f in client.xrange(f"isstreamer:{b}")]
        assert sorted(pairs) == sorted((k, e) for k, _, e in events(3000)), b


@pytest.mark.slow
@needs_streamer
def test_streamer_resends_only_the_refused_part_of_a_pipeline(
    server: RedisServer,
    tmp_path: Path,
) -> None:
    """OOM half-way through batches, then space again: every event arrives exactly once."""
    streamer = isstreamer.Streamer(
        bucket_key="pi1",
        api_base=server.url,
        buffer_size=1000,
        spill_dir=str(tmp_path / "spool"),
        retry_policy=fast_policy(),
    )
    log_events(streamer, events(10))
    assert streamer.flush(10)
    _fill_to_the_limit(server, 300_000)
    batch = events(20_000, 10)
    log_events(streamer, batch)
    assert streamer.flush(30)
    server.client().config_set("maxmemory", "0")
    try:
        assert wait_for(all_delivered(streamer, 20_010), 30), streamer.stats()
    finally:
        streamer.close(timeout=10)
    pairs = stream_pairs(server)
    assert len(pairs) - len(set(pairs)) == 0  # no duplicates
    assert sorted(pairs) == sorted((k, e) for k, _, e in events(20_010))


def test_cluster_sink_follows_a_moved_slot_without_duplicates(clean_cluster: Any) -> None:
    """A slot moved to another node after the sink learnt the map: MOVED replies are followed
    and every entry is stored once, on the new owner."""
    from isstreamer.sinks.redis_cluster import RedisClusterSink

    sink = RedisClusterSink(clean_cluster.url, timeout=2)
    try:
        assert sink.send(Bucket("warmup"), events(1)).ok  # the slot map is now cached
        client = clean_cluster.client()
        stream = "isstreamer:moving"
        slot = client.keyslot(stream)
        old = clean_cluster.node_for(stream)
        new = next(n for n in clean_cluster.nodes if n is not old)
        new_id = new.client().execute_command("CLUSTER MYID")
        for node in clean_cluster.nodes:  # an empty slot can be handed over by decree
            node.client().execute_command("CLUSTER SETSLOT", slot, "NODE", new_id)
        followed: list[int] = []
        pipeline = sink._pipeline
        sink._pipeline = lambda c, s, batch: followed.append(len(batch)) or pipeline(c, s, batch)
        result = sink.send(Bucket("moving"), events(500))
        assert result.ok, result
        assert followed == [500]  # the old owner answered MOVED to each; the client followed
    finally:
        sink.close()
    assert clean_cluster.node_for(stream) is new
    assert new.client().xlen(stream) == 500  # once: nothing was stored twice
