"""The background worker: one lazy thread, timely batches, flush deadlines, fork safety."""

from __future__ import annotations

import collections
import subprocess
import sys
import textwrap
import threading

import pytest

from isstreamer import RetryPolicy, Streamer


def workers():
    return [t for t in threading.enumerate() if t.name == "isstreamer-worker"]


@pytest.fixture
def make(make_streamer):
    """Streamers aimed at the test server, bucket "b"."""
    return lambda **kwargs: make_streamer(**{"bucket_key": "b", **kwargs})


def test_worker_starts_lazily_and_only_once(make, api_server):
    """No thread before the first log(); exactly one however many batches follow."""
    before = len(workers())
    streamer = make(buffer_size=10)
    assert len(workers()) == before
    for i in range(1000):
        streamer.log("k", i)
    assert streamer.flush(10)
    assert len(workers()) == before + 1
    streamer.close()
    assert len(workers()) == before


def test_full_batches_are_sent_by_count(make, api_server):
    """With a long flush_interval, full batches still go out at buffer_size."""
    streamer = make(buffer_size=50, flush_interval=3600)
    for i in range(200):
        streamer.log("k", i)
    assert api_server.wait_for_events(200, timeout=10)
    sizes = [len(r.json) for r in api_server.requests if r.path == "/api/events"]
    assert sizes == [50, 50, 50, 50]


@pytest.mark.slow
def test_flush_deadline_against_hanging_server(make, api_server):
    """flush(timeout) returns False at its deadline when the server hangs; nothing is lost."""
    api_server.hang(times=None)
    streamer = make(timeout=30, retry_policy=RetryPolicy(attempts=1))
    streamer.log("k", 1)
    assert streamer.flush(0.5) is False
    api_server.clear()
    assert streamer.close(5)
    stats = streamer.stats()
    assert stats["sent"] + stats["spilled"] == 1


def test_flush_waits_for_events_logged_before_it(make, api_server):
    """After flush() returns True every earlier event has been received."""
    streamer = make(buffer_size=1000, flush_interval=3600)
    for i in range(123):
        streamer.log("k", i)
    assert streamer.flush(10)
    assert len(api_server.events) == 123


def test_fork_child_has_its_own_buffer_and_connection(api_server, access_key, tmp_path):
    """A forked child sends only its own events, over its own connection; the parent its own."""
    code = textwrap.dedent(f"""
        import os
        from isstreamer import Streamer
        s = Streamer(access_key={access_key!r}, api_base={api_server.url!r}, bucket_key='b',
                     buffer_size=1000, flush_interval=3600, spill_dir={str(tmp_path / "spool")!r})
        s.log('warmup', 0)
        assert s.flush(5)
        for i in range(5):
            s.log('parent', i)
        pid = os.fork()
        if pid == 0:
            s.log('child', 1)
            os._exit(0 if s.close(5) else 1)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0, status
        assert s.close(5)
        """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    keys = collections.Counter(e["key"] for e in api_server.events)
    assert keys == {"warmup": 1, "parent": 5, "child": 1}
    conn_of = {r.json[0]["key"]: r.conn for r in api_server.requests if r.path == "/api/events"}
    assert conn_of["child"] != conn_of["parent"]


def test_keep_alive_reuses_one_connection(make, api_server):
    """Many batches travel over one TCP connection."""
    streamer = make(buffer_size=10)
    for i in range(100):
        streamer.log("k", i)
    assert streamer.flush(10)
    assert len({r.conn for r in api_server.requests}) == 1


class GateSink:
    """A sink whose sends wait until the test opens the gate; records what it stored."""

    address = "gate"

    def __init__(self):
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.stored = []

    def send(self, bucket, events):
        self.entered.set()
        self.gate.wait(30)
        self.stored.extend(e[1] for e in events)
        from isstreamer.sinks.base import SENT

        return SENT

    def close(self):
        self.gate.set()


@pytest.fixture
def spill_threads(monkeypatch):
    """The names of the threads that wrote each spill file."""
    from isstreamer.spool import Spool

    names = []
    real = Spool.write

    def write(self, *args, **kwargs):
        names.append(threading.current_thread().name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Spool, "write", write)
    return names


@pytest.mark.slow
def test_overflow_is_written_by_the_worker_not_the_caller(tmp_path, spill_threads):
    """Past max_buffer (but below twice it) the worker moves the oldest events to disk."""
    sink = GateSink()
    streamer = Streamer(
        sink=sink, bucket_key="b", spill_dir=str(tmp_path), buffer_size=10, max_buffer=100
    )
    streamer.log("k", 0)
    assert sink.entered.wait(5)  # the worker holds event 0 on the wire
    for i in range(1, 181):
        streamer.log("k", i)
    assert spill_threads == []  # the caller never touched the disk
    sink.gate.set()
    assert streamer.close(30)
    assert spill_threads and set(spill_threads) == {"isstreamer-worker"}
    assert sorted(sink.stored) == list(range(181))
    assert streamer.stats()["replayed"] > 0


@pytest.mark.slow
def test_a_stuck_worker_makes_the_caller_spill_at_twice_the_bound(tmp_path, spill_threads):
    """While the worker is stuck in a send, memory stays below twice max_buffer."""
    sink = GateSink()
    streamer = Streamer(
        sink=sink, bucket_key="b", spill_dir=str(tmp_path), buffer_size=10, max_buffer=100
    )
    streamer.log("k", 0)
    assert sink.entered.wait(5)
    for i in range(1, 500):
        streamer.log("k", i)
    assert streamer.stats()["queued"] <= 201
    assert threading.current_thread().name in spill_threads
    sink.gate.set()
    assert streamer.close(30)
    assert sorted(sink.stored) == list(range(500))


def test_streamer_uses_only_the_worker_methods():
    """The Streamer's modules read or write none of the worker's fields."""
    import inspect
    import re

    from isstreamer import settle, streamer

    source = inspect.getsource(streamer) + inspect.getsource(settle)
    fields = re.findall(r"worker\.(idle|kicked|flush_mark|wake|_thread|kick_at)\b", source)
    assert fields == []
    assert "_worker.wake_up()" in source  # the pattern does see method calls next to fields


@pytest.mark.slow
def test_flush_before_any_log_leaves_the_worker_lazy_and_wakeable(make, api_server):
    """flush() with nothing logged starts no thread; the first log() afterwards still wakes one."""
    before = len(workers())
    streamer = make(buffer_size=100)
    assert streamer.flush(1)
    assert len(workers()) == before
    streamer.log("k", 1)
    assert api_server.wait_for_events(1, timeout=5)  # within flush_interval, not at 100 events


def test_replay_starts_the_worker_for_files_that_appeared_later(make, api_server, tmp_path):
    """Spill files written after construction are replayed by replay(), worker or not."""
    from isstreamer.sinks.base import Bucket
    from isstreamer.spool import Spool

    streamer = make()
    Spool(tmp_path / "spool").write(Bucket("b"), [("k", 7, 1.0)], sink=api_server.url)
    assert streamer.replay(timeout=10)
    assert [e["value"] for e in api_server.events] == [7]


class FakeDelivery:
    """What the worker needs of a Delivery, recording what it was given."""

    def __init__(self):
        import types

        self.stop_event = threading.Event()
        self.delivered, self.spilled = [], []
        self.stats = types.SimpleNamespace(own_on_disk=lambda: 0)
        self.open = False
        self.circuit = types.SimpleNamespace(blocks=lambda: False)

    def deliver_groups(self, groups):
        self.delivered.append([e[1] for _, events in groups for e in events])

    def spill(self, bucket, events, **fields):
        self.spilled.append(len(events))

    def has_replay_work(self):
        return False


def make_worker(**kwargs):
    from isstreamer.buffer import Buffer
    from isstreamer.sinks.base import Bucket
    from isstreamer.worker import Worker

    buffer, delivery = Buffer(), FakeDelivery()
    worker = Worker(
        buffer, delivery, Bucket("b"), **{"batch_size": 3, "flush_interval": 1.0, **kwargs}
    )
    return worker, buffer, delivery


def test_sync_worker_ships_full_batches_on_the_callers_thread():
    """threaded=False: notify() ships every full batch at once and leaves the rest buffered."""
    worker, buffer, delivery = make_worker(threaded=False)
    for i in range(7):
        buffer.append(("k", i, 1.0))
        worker.notify()
    assert delivery.delivered == [[0, 1, 2], [3, 4, 5]] and len(buffer) == 1
    assert worker.ship_until(None) and delivery.delivered[-1] == [6]
    assert not workers() or all(t.name != "isstreamer-worker" for t in workers())


def test_relieve_spills_only_at_twice_the_bound():
    """relieve() does nothing below twice max_buffer and spills down to 3/4 of it above."""
    worker, buffer, delivery = make_worker(max_buffer=100)
    for i in range(199):
        buffer.append(("k", i, 1.0))
    worker.relieve()
    assert delivery.spilled == []
    buffer.append(("k", 199, 1.0))
    worker.relieve()
    assert sum(delivery.spilled) == 200 - 75 and len(buffer) == 75


def test_request_flush_with_nothing_to_do_starts_no_thread():
    """request_flush() for an empty buffer starts no thread and keeps the worker idle."""
    worker, buffer, _ = make_worker()
    worker.request_flush(buffer.mark())
    assert not worker.alive and worker.idle


def test_a_bare_fork_child_is_warned_once_and_a_multiprocessing_child_not(
    api_server, access_key, tmp_path
):
    """os.fork() children, which os._exit() can end without any hook, get one warning."""
    code = textwrap.dedent(f"""
        import multiprocessing as mp, os
        from isstreamer import Streamer
        s = Streamer(access_key={access_key!r}, api_base={api_server.url!r}, bucket_key='b',
                     spill_dir={str(tmp_path / "spool")!r})

        def child():
            s.log('mp', 1)

        if __name__ == '__main__':
            p = mp.get_context('fork').Process(target=child)
            p.start(); p.join()
            pid = os.fork()
            if pid == 0:
                s.log('bare', 1)
                s.log('bare', 2)
                ok = s.close(5)
                os._exit(0 if ok else 1)
            _, status = os.waitpid(pid, 0)
            assert os.WEXITSTATUS(status) == 0
            s.close(5)
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("forked with os.fork()") == 1, done.stderr
    keys = collections.Counter(e["key"] for e in api_server.events)
    assert keys == {"mp": 1, "bare": 2}
