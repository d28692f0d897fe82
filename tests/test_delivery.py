"""Outcomes, the offline circuit, spilling and automatic replay, against the real local server."""

from __future__ import annotations

import collections
import json
import logging
import stat
import subprocess
import sys
import textwrap
import time

import pytest
from apiserver import ApiServer

from isstreamer import RetryPolicy, Streamer
from isstreamer.sinks.base import Bucket, Outcome, SendResult
from isstreamer.spool import Spool

FAST = dict(
    attempts=2, initial_wait=0.01, max_wait=0.05, jitter=0.0, probe_initial=0.1, probe_max=0.3
)


class SleepRecorder:
    """An injected sleep: records each wait and returns at once."""

    def __init__(self):
        self.waits = []

    def __call__(self, seconds):
        self.waits.append(seconds)


@pytest.fixture
def make(make_streamer):
    """Streamers aimed at the test server, with retry and probe waits of milliseconds."""
    return lambda **kwargs: make_streamer(**{"retry_policy": RetryPolicy(**FAST), **kwargs})


def run_child(code: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        timeout=timeout,
        check=True,
        capture_output=True,
        text=True,
        **kwargs,
    )


def spill_files(directory):
    return sorted(p for p in directory.glob("*.json"))


def test_503_burst_is_retried(make, api_server):
    """Three 503s in a row are retried with backoff and every event arrives."""
    sleep = SleepRecorder()
    api_server.fail(503, times=3)
    streamer = make(retry_policy=RetryPolicy(attempts=5, initial_wait=0.5, jitter=0.0, sleep=sleep))
    for i in range(10):
        streamer.log("k", i)
    assert streamer.flush(10)
    assert len(api_server.events) == 10
    assert sleep.waits == [0.5, 1.0, 2.0]
    assert streamer.stats()["retried"] == 3


def test_retry_after_is_honoured_with_injected_sleep(make, api_server):
    """429 with Retry-After: 2 makes the worker wait at least 2 s before the next request."""
    sleep = SleepRecorder()
    api_server.fail(429, headers={"Retry-After": "2"})
    streamer = make(retry_policy=RetryPolicy(attempts=3, initial_wait=0.1, jitter=0.0, sleep=sleep))
    streamer.log("k", 1)
    assert streamer.flush(10)
    assert sleep.waits and sleep.waits[0] >= 2.0
    assert len(api_server.events) == 1


@pytest.mark.slow
def test_retry_after_no_request_during_the_wait(make, api_server):
    """On the real clock: no request reaches the server in the 2 s after a 429 Retry-After: 2."""
    api_server.fail(429, headers={"Retry-After": "2"})
    streamer = make(retry_policy=RetryPolicy(attempts=3, initial_wait=0.1, jitter=0.0))
    streamer.log("k", 1)
    assert streamer.flush(10)
    event_requests = [r for r in api_server.requests if r.path == "/api/events"]
    assert [r.status for r in event_requests] == [429, 204]
    assert event_requests[1].time - event_requests[0].time >= 2.0


def test_401_spills_with_a_clear_error_and_no_key(make, api_server, access_key, tmp_path, caplog):
    """A refused key keeps the events on disk (0600) and logs 401 without the key."""
    api_server.access_keys.clear()
    with caplog.at_level(logging.INFO, logger="isstreamer"):
        streamer = make()
        for i in range(100):
            streamer.log("k", i)
        assert not streamer.close(5)  # False: the events are on disk, not delivered
    files = spill_files(tmp_path / "spool")
    assert sum(len(json.loads(p.read_text())["events"]) for p in files) == 100
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert stat.S_IMODE((tmp_path / "spool").stat().st_mode) == 0o700
    assert "401" in caplog.text and access_key not in caplog.text
    assert all(access_key not in p.read_text() for p in files)


def test_bad_key_process_then_right_key_process(api_server, access_key, tmp_path):
    """A process with a bad key spills 100 events; the next, with the right key, replays them."""
    spool = tmp_path / "spool"
    common = f"api_base={api_server.url!r}, bucket_key='b', spill_dir={str(spool)!r}"
    run_child(f"""
        from isstreamer import Streamer
        s = Streamer(access_key='wrong-key', {common})
        for i in range(100): s.log('k', i)
        assert not s.close(5)  # False: the events wait on disk
        """)
    assert len(api_server.events) == 0 and spill_files(spool)
    run_child(f"""
        from isstreamer import Streamer
        import time
        s = Streamer(access_key={access_key!r}, {common})
        deadline = time.monotonic() + 20
        while s.stats()['spool_files'] and time.monotonic() < deadline:
            s.flush(0.1)
        s.close(5)
        """)
    assert sorted(e["value"] for e in api_server.events) == list(range(100))
    assert not spill_files(spool)


def test_400_quarantines_with_reason(make, api_server, tmp_path):
    """A batch the server rejects as bad goes to quarantine/ with a .reason file."""
    api_server.fail(
        400, body={"message": {"error": {"type": "BUCKET_REMOVED", "message": "bucket gone"}}}
    )
    streamer = make()
    streamer.log("k", 1)
    assert not streamer.flush(5)  # False: the event was not accepted
    quarantine = tmp_path / "spool" / "quarantine"
    reasons = list(quarantine.glob("*.reason"))
    assert len(reasons) == 1 and "bucket gone" in reasons[0].read_text()
    assert streamer.stats()["quarantined"] == 1


def test_413_splits_the_batch(access_key, tmp_path):
    """A batch over the body limit is split in halves until every part is accepted."""
    with ApiServer(access_keys=(access_key,), max_body=3000) as server:
        streamer = Streamer(
            access_key=access_key,
            api_base=server.url,
            bucket_key="b",
            buffer_size=200,
            spill_dir=str(tmp_path / "spool"),
        )
        for i in range(200):
            streamer.log("key-with-a-longer-name", i)
        assert streamer.close(10)
        assert sorted(e["value"] for e in server.events) == list(range(200))
        assert any(r.status == 413 for r in server.requests)


def test_outage_with_streamer_open_delivers_everything(make, api_server):
    """Connections refused while 20,000 events are logged: all arrive once the server is back."""
    streamer = make(buffer_size=100)
    api_server.stop()
    for i in range(20_000):
        streamer.log("k", i)
    assert streamer.flush(30)  # everything is on disk now
    assert streamer.stats()["spilled"] > 0
    api_server.start()
    assert api_server.wait_for_events(20_000, timeout=60)
    values = collections.Counter(e["value"] for e in api_server.events)
    assert len(values) == 20_000
    assert streamer.stats()["dropped"] == 0


def test_open_circuit_stops_the_retry_storm(make, api_server):
    """While the sink fails, batches go to disk with only occasional probes, not a retry each."""
    api_server.fail(503, times=None)
    streamer = make(
        buffer_size=10,
        retry_policy=RetryPolicy(
            attempts=3, initial_wait=0.01, jitter=0.0, probe_initial=30, probe_max=60
        ),
    )
    for i in range(500):
        streamer.log("k", i)
        if i % 10 == 9:
            streamer.flush(5)
    assert streamer.stats()["spilled"] == 500
    assert len([r for r in api_server.requests if r.path == "/api/events"]) <= 3


def test_corrupt_file_is_quarantined_and_the_rest_replayed(make, api_server, tmp_path):
    """A garbage spill file goes to quarantine; the good ones are still replayed."""
    spool_dir = tmp_path / "spool"
    spool = Spool(spool_dir)
    spool.write(Bucket("b1"), [("k", 1, 1.0)], sink=api_server.url)
    (spool_dir / "20200101T000000.000000-deadbeef-n3.json").write_text("{not json")
    spool.write(Bucket("b1"), [("k", 2, 2.0)], sink=api_server.url)
    streamer = make()  # finds the files and starts replaying them by itself
    streamer.replay(timeout=10)
    assert api_server.wait_for_events(2, timeout=10)
    assert sorted(e["value"] for e in api_server.events) == [1, 2]
    assert (spool_dir / "quarantine" / "20200101T000000.000000-deadbeef-n3.json.reason").exists()
    assert streamer.stats()["quarantined_other"] == 3  # another run's file


def test_replay_only_to_the_matching_sink(make, api_server, tmp_path):
    """Spill files written for another receiver are left alone."""
    spool = Spool(tmp_path / "spool")
    spool.write(Bucket("b1"), [("k", 1, 1.0)], sink="https://elsewhere.example")
    streamer = make()
    assert streamer.replay(timeout=5)
    assert api_server.events == [] and len(spill_files(tmp_path / "spool")) == 1


@pytest.mark.slow
def test_quota_evicts_oldest_and_counts(make, api_server, tmp_path, caplog):
    """Past spill_max_bytes the oldest files go first, and their events count as dropped."""
    api_server.stop()
    streamer = make(spill_max_bytes=3000, buffer_size=10)
    with caplog.at_level(logging.WARNING, logger="isstreamer"):
        for i in range(400):
            streamer.log("k", i)
        # False: evictions lost events. With the receiver down, close() spends its whole
        # budget probing; 1 s proves the same as 10 s did, 9 s sooner.
        assert not streamer.close(1)
    stats = streamer.stats()
    assert stats["dropped"] > 0 and "evicted" in caplog.text
    left = [
        e[1] for p in spill_files(tmp_path / "spool") for e in json.loads(p.read_text())["events"]
    ]
    assert left and max(left) == 399 and min(left) == 400 - len(left)  # the newest survive
    assert stats["spilled"] == 400


@pytest.mark.slow
def test_two_processes_replaying_one_spool_send_nothing_twice(api_server, access_key, tmp_path):
    """Two processes replaying the same spool at once deliver each event exactly once."""
    spool_dir = tmp_path / "spool"
    spool = Spool(spool_dir)
    for f in range(200):
        spool.write(Bucket("b"), [("k", f * 10 + i, 1.0) for i in range(10)], sink=api_server.url)
    code = textwrap.dedent(f"""
        from isstreamer import Streamer
        s = Streamer(access_key={access_key!r}, api_base={api_server.url!r}, bucket_key='b',
                     buffer_size=5, spill_dir={str(spool_dir)!r})
        s.replay(timeout=60)
        s.close(5)
        """)
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    assert [p.wait(timeout=90) for p in procs] == [0, 0]
    counts = collections.Counter(e["value"] for e in api_server.events)
    assert len(counts) == 2000 and set(counts.values()) == {1}
    assert not spill_files(spool_dir)


@pytest.mark.slow
def test_kill_9_after_flush_loses_nothing(api_server, access_key, tmp_path):
    """A child logs 5,000 events, server down, flushes, dies by SIGKILL; the next run sends all."""
    spool = tmp_path / "spool"
    api_server.stop()
    common = (
        f"api_base={api_server.url!r}, bucket_key='b', spill_dir={str(spool)!r}, buffer_size=100, "
        f"retry_policy=RetryPolicy(**{FAST!r})"  # the backoff's length is not what is tested
    )
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import os, signal
        from isstreamer import RetryPolicy, Streamer
        s = Streamer(access_key={access_key!r}, {common})
        for i in range(5000): s.log('k', i)
        assert s.flush(30)
        os.kill(os.getpid(), signal.SIGKILL)
        """),
        ],
        timeout=60,
    )
    assert child.returncode == -9
    api_server.start()
    run_child(f"""
        from isstreamer import RetryPolicy, Streamer
        s = Streamer(access_key={access_key!r}, {common})
        assert s.replay(timeout=30)
        s.close(5)
        """)
    assert sorted(e["value"] for e in api_server.events) == list(range(5000))


@pytest.mark.slow
def test_outage_larger_than_the_buffer_stays_small_and_delivers(api_server, access_key, tmp_path):
    """6× max_buffer events logged during an outage: RSS stays small, every event arrives later.

    The same with the default buffer and 300,000 events is the bench's outage figure.
    """
    api_server.stop()
    code = textwrap.dedent(f"""
        import sys, time, psutil
        from isstreamer import RetryPolicy, Streamer
        proc = psutil.Process()
        s = Streamer(access_key={access_key!r}, api_base={api_server.url!r}, bucket_key='b',
                     buffer_size=1000, max_buffer=10_000, retry_policy=RetryPolicy(**{FAST!r}),
                     spill_dir={str(tmp_path / "spool")!r})
        before = proc.memory_info().rss
        for i in range(60_000):
            s.log('k', i)
        assert s.flush(120)
        assert s.stats()['spool_files'] > 0  # the buffer overflowed to disk
        print(proc.memory_info().rss - before, flush=True)
        sys.stdin.readline()  # the parent brings the server back
        deadline = time.monotonic() + 120
        while s.stats()['spool_files'] and time.monotonic() < deadline:
            s.flush(0.2)
        s.close(10)
        """)
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    growth = int(child.stdout.readline())
    api_server.start()
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.wait(timeout=180) == 0
    # 10,000 buffered events are about 1.2 MiB; the bound leaves room for the allocator.
    assert growth < 20 * 1024 * 1024, f"RSS grew {growth / 2**20:.1f} MiB"
    assert api_server.wait_for_events(60_000, timeout=10)
    assert len({e["value"] for e in api_server.events}) == 60_000


class RaisingSink:
    """A custom sink that breaks the contract by raising."""

    address = "raising"

    def send(self, bucket, events):
        raise ConnectionError("socket closed")

    def close(self):
        pass


@pytest.mark.slow
@pytest.mark.parametrize("use_async", [True, False])
def test_a_raising_sink_loses_nothing(tmp_path, use_async):
    """A sink whose send() raises is a failed send: the events are spilled, never lost or raised."""
    streamer = Streamer(
        bucket_key="b",
        sink=RaisingSink(),
        spill_dir=str(tmp_path),
        buffer_size=5,
        use_async=use_async,
        retry_policy=RetryPolicy(**FAST),
    )
    for i in range(5):
        streamer.log("k", i)
    assert streamer.flush(5)  # True: the sink is failing and the events are on disk
    assert not streamer.close(2)  # False: on disk is not delivered
    assert streamer.stats()["spilled"] == 5 and streamer.stats()["dropped"] == 0


def test_close_rescues_every_bucket_of_a_stuck_batch(make, api_server, tmp_path):
    """Past close()'s deadline, all runs of the batch in flight are on disk, across set_bucket()."""
    streamer = make(bucket_key="a", buffer_size=10, timeout=30)
    streamer.set_bucket(bucket_key="b")
    streamer.set_bucket(bucket_key="a")
    streamer.log("warmup", 0)
    assert streamer.flush(5)  # both buckets exist now
    api_server.hang(times=None)
    for i in range(5):
        streamer.log("k", i)
    streamer.set_bucket(bucket_key="b")
    for i in range(5):
        streamer.log("k", i)
    assert api_server.wait_for_requests(2, path="/api/events", timeout=5)  # stuck on bucket a
    assert not streamer.close(0.5)  # False: on disk, not delivered
    on_disk = {p: json.loads(p.read_text()) for p in spill_files(tmp_path / "spool")}
    assert sum(len(doc["events"]) for doc in on_disk.values()) == 10
    assert {doc["bucket_key"] for doc in on_disk.values()} == {"a", "b"}


def test_rate_limit_reset_far_away_is_capped(make, api_server, caplog):
    """A reset in milliseconds (or inf) pauses at most max_retry_after; the worker never crashes."""
    for reset in (str(int(time.time() * 1000)), "inf"):
        api_server.fail(204, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
        streamer = make(buffer_size=1, retry_policy=RetryPolicy(**dict(FAST, max_retry_after=600)))
        streamer.log("k", 1)
        assert streamer.flush(5)
        delivery = streamer._delivery
        assert delivery.open and delivery.probe_at - time.monotonic() <= 600
        streamer.log("k", 2)
        assert streamer.flush(5)  # spilled while paused, not stuck
        streamer.close(2)
    assert "worker failed" not in caplog.text


@pytest.mark.slow
def test_sync_mode_flush_and_close_keep_their_deadline(make, api_server):
    """use_async=False: flush(timeout), close(timeout) end within one request of their deadline."""
    api_server.hang(times=None)
    streamer = make(
        use_async=False,
        buffer_size=100,
        timeout=1.0,
        retry_policy=RetryPolicy(attempts=5, initial_wait=1.0, jitter=0.0),
    )
    streamer.log("k", 1)
    started = time.monotonic()
    streamer.flush(0.5)
    # Generous for a busy machine: one request timeout (1 s) is the aim; five timeouts plus
    # their backoff, what a flush ignoring its deadline waits, would be 20 s.
    assert time.monotonic() - started < 10.0
    streamer.log("k", 2)
    started = time.monotonic()
    assert not streamer.close(0.5)
    assert time.monotonic() - started < 10.0  # as above
    assert streamer.stats()["spilled"] == 2


class PartialSink:
    """A sink that stores every event except those whose value is in ``refuse``, reporting them."""

    address = "partial"

    def __init__(self, refuse, outcome, times=1):
        self.refuse, self.outcome, self.times = set(refuse), outcome, times
        self.stored = []
        self.sends = []

    def send(self, bucket, events):
        self.sends.append([e[1] for e in events])
        failing = self.times > 0
        self.times -= 1
        failed = tuple(i for i, e in enumerate(events) if failing and e[1] in self.refuse)
        self.stored.extend(e[1] for i, e in enumerate(events) if i not in failed)
        if not failed:
            return SendResult(Outcome.OK)
        return SendResult(self.outcome, message="refused some", failed=failed)

    def close(self):
        pass


def test_partial_retry_resends_only_the_failed_events(tmp_path):
    """A partial RETRY answer re-sends only the failed events: no duplicates, all stored."""
    sink = PartialSink(refuse={3, 7}, outcome=Outcome.RETRY)
    streamer = Streamer(
        bucket_key="b",
        sink=sink,
        spill_dir=str(tmp_path),
        buffer_size=10,
        retry_policy=RetryPolicy(**FAST),
    )
    for i in range(10):
        streamer.log("k", i)
    assert streamer.flush(5)
    assert sorted(sink.stored) == list(range(10))
    assert sink.sends[1] == [3, 7]
    streamer.close(1)
    stats = streamer.stats()
    assert stats["sent"] == 10 and stats["spilled"] == 0


def test_partial_bad_quarantines_only_the_failed_events(tmp_path):
    """A partial BAD answer quarantines the refused events alone; the rest count as sent."""
    sink = PartialSink(refuse={5}, outcome=Outcome.BAD)
    streamer = Streamer(
        bucket_key="b",
        sink=sink,
        spill_dir=str(tmp_path),
        buffer_size=10,
        retry_policy=RetryPolicy(**FAST),
    )
    for i in range(10):
        streamer.log("k", i)
    streamer.flush(5)
    streamer.close(1)
    stats = streamer.stats()
    assert stats["sent"] == 9 and stats["quarantined"] == 1
    assert len(sink.sends) == 1
    quarantined = [json.loads(p.read_text()) for p in (tmp_path / "quarantine").glob("*.json")]
    assert [e[1] for doc in quarantined for e in doc["events"]] == [5]


def test_partial_auth_spills_only_the_failed_events(tmp_path):
    """A partial AUTH answer spills the refused events and nothing that was stored."""
    sink = PartialSink(refuse={1, 2}, outcome=Outcome.AUTH, times=100)
    streamer = Streamer(
        bucket_key="b",
        sink=sink,
        spill_dir=str(tmp_path),
        buffer_size=10,
        retry_policy=RetryPolicy(**FAST),
    )
    for i in range(10):
        streamer.log("k", i)
    streamer.flush(5)
    streamer.close(1)
    spilled = [e[1] for p in spill_files(tmp_path) for e in json.loads(p.read_text())["events"]]
    assert sorted(spilled) == [1, 2]
    assert sorted(sink.stored) == [0, 3, 4, 5, 6, 7, 8, 9]


def test_partial_replay_keeps_only_the_unstored_events(tmp_path):
    """Replaying a file with a partial failure leaves only the failed events on disk."""
    spool = Spool(tmp_path)
    spool.write(Bucket("b"), [("k", i, 1.0) for i in range(6)], sink="partial")
    sink = PartialSink(refuse={4}, outcome=Outcome.RETRY, times=100)
    streamer = Streamer(
        bucket_key="b",
        sink=sink,
        spill_dir=str(tmp_path),
        retry_policy=RetryPolicy(**dict(FAST, attempts=1)),
        use_async=False,
    )
    assert not streamer.replay(timeout=5)
    left = [e[1] for p in spill_files(tmp_path) for e in json.loads(p.read_text())["events"]]
    assert left == [4]
    assert sorted(sink.stored) == [0, 1, 2, 3, 5]


# ---- the delivery contract ------------------------------------------------------------------


def assert_adds_up(stats):
    """logged == sent + replayed + on_disk + quarantined + dropped + queued."""
    parts = ("sent", "replayed", "on_disk", "quarantined", "dropped", "queued")
    assert stats["logged"] == sum(stats[p] for p in parts), stats


def test_close_delivers_after_a_burst_of_503s(make, api_server, tmp_path):
    """Five 503s in a row: close(30) keeps probing, delivers all 1,000 events and returns True."""
    api_server.fail(503, times=5)
    streamer = make(buffer_size=100)
    for i in range(1000):
        streamer.log("k", i)
    assert streamer.close(30)
    assert sorted(e["value"] for e in api_server.events) == list(range(1000))
    assert not spill_files(tmp_path / "spool")
    stats = streamer.stats()
    assert stats["sent"] + stats["replayed"] == 1000
    assert_adds_up(stats)


def test_close_false_with_one_line_when_the_receiver_stays_down(make, api_server, caplog):
    """The receiver never answers: close() is False and one line counts what is in the spool."""
    api_server.stop()
    streamer = make(buffer_size=10)
    for i in range(50):
        streamer.log("k", i)
    with caplog.at_level(logging.WARNING, logger="isstreamer"):
        assert not streamer.close(1.0)
    lines = [r.getMessage() for r in caplog.records if "were not delivered" in r.getMessage()]
    assert len(lines) == 1 and "50 in the spool" in lines[0], lines
    assert_adds_up(streamer.stats())


def test_burst_to_a_healthy_receiver_makes_no_disk_round_trip(make, api_server, tmp_path):
    """100,000 events at buffer_size=1000 with defaults: close() delivers all, no spill file."""
    streamer = make(buffer_size=1000)
    for i in range(100_000):
        streamer.log("k", i)
    assert streamer.close(60)
    stats = streamer.stats()
    assert stats["sent"] == 100_000 and stats["spilled"] == 0, stats
    assert api_server.wait_for_events(100_000, timeout=10)
    assert not (tmp_path / "spool").exists() or not spill_files(tmp_path / "spool")


def test_flush_true_means_delivered_after_an_overflow(make, api_server):
    """Overflow spilled while the receiver is healthy: flush() returns True only once replayed."""
    api_server.delay(0.3, times=3)
    streamer = make(buffer_size=10, max_buffer=100)
    for i in range(1000):
        streamer.log("k", i)
    assert streamer.flush(30)
    stats = streamer.stats()
    assert stats["spilled"] > 0 and stats["on_disk"] == 0, stats
    assert stats["sent"] + stats["replayed"] == 1000
    assert len({e["value"] for e in api_server.events}) == 1000


def test_quarantined_events_make_flush_and_close_false(make, api_server):
    """A 400 for the only batch: flush() and close() are False, stats say quarantined."""
    api_server.fail(400)
    streamer = make(buffer_size=5)
    for i in range(5):
        streamer.log("k", i)
    assert not streamer.flush(5)
    assert not streamer.close(2)
    stats = streamer.stats()
    assert stats["quarantined"] == 5
    assert_adds_up(stats)


def test_unwritable_spool_counts_losses_and_returns_false(make, api_server, unwritable_dir, caplog):
    """Receiver down and a spool that cannot be written: every event is dropped, counted and
    logged, and flush() and close() both return False."""
    api_server.stop()
    streamer = make(buffer_size=100, spill_dir=str(unwritable_dir))
    with caplog.at_level(logging.ERROR, logger="isstreamer"):
        for i in range(3000):
            streamer.log("k", i)
        assert not streamer.flush(10)
        assert not streamer.close(2)
    stats = streamer.stats()
    assert stats["dropped"] == 3000 and stats["sent"] == 0, stats
    assert "events lost" in caplog.text
    assert_adds_up(stats)


def test_poison_event_is_isolated_and_its_neighbours_delivered(make, api_server, tmp_path):
    """The receiver answers 500 to any batch holding one value: that event alone is
    quarantined with the answer, the rest (and later batches) arrive, in bounded requests."""
    api_server.poison(37)
    streamer = make(buffer_size=50)
    for i in range(200):
        streamer.log("k", i)
    streamer.flush(20)
    assert streamer.close(5) is False
    values = sorted(e["value"] for e in api_server.events)
    assert values == [i for i in range(200) if i != 37]
    quarantine = tmp_path / "spool" / "quarantine"
    docs = [json.loads(p.read_text()) for p in quarantine.glob("*.json")]
    assert [e[1] for doc in docs for e in doc["events"]] == [37]
    assert "500" in "".join(p.read_text() for p in quarantine.glob("*.reason"))
    requests = [r for r in api_server.requests if r.path == "/api/events"]
    assert len(requests) <= 4 + 2 * 6 + 3 + 1, len(requests)  # retries + bisection + the rest
    stats = streamer.stats()
    assert stats["quarantined"] == 1
    assert_adds_up(stats)


def test_poison_in_a_one_event_file_is_quarantined_after_bounded_tries(make, api_server, tmp_path):
    """A lone event the receiver keeps refusing while it takes others ends in quarantine."""
    spool = Spool(tmp_path / "spool")
    spool.write(Bucket("b"), [("k", "poison", 1.0)], sink=api_server.url)
    spool.write(Bucket("b"), [("k", "fine", 2.0)], sink=api_server.url)
    api_server.poison("poison")
    streamer = make(buffer_size=1)
    for _ in range(4):
        streamer.log("k", "live")
        streamer.flush(5)
        streamer.replay(timeout=5)
    values = [e["value"] for e in api_server.events]
    assert "fine" in values and values.count("live") == 4 and "poison" not in values
    assert streamer.stats()["quarantined_other"] == 1
    assert not spill_files(tmp_path / "spool")


def test_stats_add_up_through_outage_recovery_and_eviction(make, api_server):
    """Through an outage, a spool quota that evicts and a recovery, the sum holds."""
    streamer = make(buffer_size=10, spill_max_bytes=4000)
    for i in range(100):
        streamer.log("k", i)
    assert streamer.flush(5)
    api_server.stop()
    for i in range(400):
        streamer.log("k", i)
    assert not streamer.flush(10)  # False: the quota evicted events
    assert_adds_up(streamer.stats())
    api_server.start()
    streamer.close(20)
    stats = streamer.stats()
    assert stats["dropped"] > 0 and stats["replayed"] > 0, stats
    assert_adds_up(stats)


# ---- Delivery alone: a fake sink, an injected clock ------------------------------------------


class PoisonSink:
    """Stores batches unless they hold a poisoned value; then answers 500 for the whole batch."""

    address = "poison"

    def __init__(self, poison):
        self.poison = set(poison)
        self.stored = []
        self.sends = 0

    def send(self, bucket, events):
        self.sends += 1
        if any(e[1] in self.poison for e in events):
            return SendResult(Outcome.RETRY, status=500, message="cannot store")
        self.stored.extend(e[1] for e in events)
        return SendResult(Outcome.OK)

    def close(self):
        pass


def make_delivery(sink, tmp_path, **policy):
    import threading

    from isstreamer.delivery import Delivery
    from isstreamer.stats import Stats

    clock = [0.0]
    stats = Stats()

    def sleep(seconds):
        clock[0] += seconds

    policy = RetryPolicy(**{**FAST, "sleep": sleep, **policy})
    delivery = Delivery(
        sink, Spool(tmp_path), stats, policy, stop_event=threading.Event(), clock=lambda: clock[0]
    )
    return delivery, stats


@pytest.mark.parametrize("poison", [{0}, {511}, {1023}, {100, 900}])
def test_bisection_finds_the_poison_in_bounded_sends(tmp_path, poison):
    """A 1,024-event batch with one or two poison events: those are quarantined alone, the
    rest stored, in at most attempts + 2·log2(n) sends per poison event."""
    sink = PoisonSink(poison)
    delivery, stats = make_delivery(sink, tmp_path)
    report = delivery.deliver(Bucket("b"), [("k", i, 1.0) for i in range(1024)])
    assert sorted(sink.stored) == [i for i in range(1024) if i not in poison]
    assert report.sent == 1024 - len(poison) and report.quarantined == len(poison)
    assert not report.delivered
    assert sink.sends <= 2 + len(poison) * 2 * 10
    assert not delivery.open  # a poison event is not an outage


def test_an_outage_answering_500_is_not_bisected_forever(tmp_path):
    """Every batch refused: after a few failed halves the batch is spilled and the circuit opens."""
    sink = PoisonSink(set(range(100)))
    delivery, stats = make_delivery(sink, tmp_path)
    report = delivery.deliver(Bucket("b"), [("k", i, 1.0) for i in range(100)])
    assert report.spilled == 100 and delivery.open
    assert sink.sends == 2 + 2 * 3  # the attempts, then two halves on three levels
    assert stats.snapshot()["on_disk"] == 100


def test_report_counts_a_delivered_batch(tmp_path):
    """A batch the sink takes reports sent and delivered."""
    delivery, _ = make_delivery(PoisonSink(set()), tmp_path)
    report = delivery.deliver(Bucket("b"), [("k", 1, 1.0), ("k", 2, 1.0)])
    assert report.sent == 2 and report.delivered


def test_a_quarantine_write_that_raises_is_a_counted_loss(tmp_path, monkeypatch, caplog):
    """Any exception from the quarantine write counts the events as dropped, with an error log."""
    sink = PoisonSink(set())
    delivery, stats = make_delivery(sink, tmp_path)

    def broken(*args, **kwargs):
        raise ValueError("cannot encode")

    monkeypatch.setattr(delivery.spool, "quarantine_batch", broken)
    with caplog.at_level(logging.ERROR, logger="isstreamer"):
        delivery.quarantine(Bucket("b"), [("k", 1, 1.0)], "400", stats.add)
    counts = stats.snapshot()
    assert counts["dropped"] == 1 and counts["quarantined"] == 0
    assert "events lost" in caplog.text


def test_a_batch_the_sink_cannot_encode_is_split_to_the_bad_event(tmp_path):
    """BAD without a status (the encoder failed): the good neighbours are delivered and the
    bad event is quarantined on its own."""

    class EncodingSink(PoisonSink):
        def send(self, bucket, events):
            self.sends += 1
            if any(e[1] in self.poison for e in events):
                return SendResult(Outcome.BAD, message="batch cannot be encoded as JSON")
            self.stored.extend(e[1] for e in events)
            return SendResult(Outcome.OK)

    sink = EncodingSink({"bad"})
    delivery, stats = make_delivery(sink, tmp_path)
    events = [("k", i, 1.0) for i in range(8)] + [("k", "bad", 1.0)]
    report = delivery.deliver(Bucket("b"), events)
    assert sorted(sink.stored) == list(range(8))
    assert report.sent == 8 and report.quarantined == 1
    assert stats.snapshot()["quarantined"] == 1


def test_records_failing_in_a_200_answer_are_not_taken_for_poison(tmp_path):
    """A partial RETRY inside a 200 (throttled records) is retried and spilled, not bisected."""

    class ThrottlingSink(PoisonSink):
        def send(self, bucket, events):
            self.sends += 1
            return SendResult(
                Outcome.RETRY, status=200, message="throttled", failed=tuple(range(len(events)))
            )

    sink = ThrottlingSink(set())
    delivery, stats = make_delivery(sink, tmp_path)
    report = delivery.deliver(Bucket("b"), [("k", i, 1.0) for i in range(8)])
    assert report.spilled == 8 and report.quarantined == 0
    assert sink.sends == FAST["attempts"]


def test_flush_does_not_wait_forever_for_a_file_another_process_holds(make, api_server, tmp_path):
    """An own spill file claimed by another sender: flush() returns False instead of hanging."""
    streamer = make(buffer_size=10, max_buffer=10)
    api_server.stop()
    for i in range(10):
        streamer.log("k", i)
    assert streamer.flush(5)  # on disk while the receiver is down
    spool = Spool(tmp_path / "spool")
    claimed = [spool.claim(p) for p in spool.files()]  # another sender takes the files
    assert all(claimed)
    api_server.start()
    streamer.log("k", 10)
    assert api_server.wait_for_events(1, timeout=10)  # the probe passed: the circuit is closed
    started = time.monotonic()
    assert streamer.flush(None) is False
    assert time.monotonic() - started < 30  # generous: a flush waiting for the file never ends
    assert not streamer.stats()["circuit_open"]


def test_sync_close_replays_its_own_spill_files_on_the_callers_thread(make, api_server, tmp_path):
    """use_async=False: close() probes and replays what it spilled, with no worker thread."""
    import threading

    api_server.fail(503, times=3)
    policy = RetryPolicy(**dict(FAST, attempts=1))
    streamer = make(use_async=False, buffer_size=10, retry_policy=policy)
    for i in range(30):
        streamer.log("k", i)
    assert streamer.stats()["on_disk"] > 0
    assert streamer.close(10)
    assert sorted(e["value"] for e in api_server.events) == list(range(30))
    assert not spill_files(tmp_path / "spool")
    assert not any(t.name == "isstreamer-worker" for t in threading.enumerate())
    assert_adds_up(streamer.stats())
