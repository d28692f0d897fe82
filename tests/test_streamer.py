"""The public Streamer API against the real local events server."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
import subprocess
import sys
import threading
import time
from decimal import Decimal

import psutil
import pytest

from isstreamer import ConfigError, RetryPolicy, Streamer


@pytest.fixture
def make(make_streamer):
    """Streamers aimed at the test server (see conftest.make_streamer)."""
    return make_streamer


def test_readme_example_end_to_end(make, api_server):
    """The ISStreamer README example delivers every event with bucket name and key."""
    streamer = make(bucket_name="Example Bucket", bucket_key="example_bucket")
    streamer.log("My Messages", "Stream Starting")
    for num in range(1, 20):
        streamer.log("My Numbers", num)
        if num % 2 == 0:
            streamer.log("My Booleans", False)
        else:
            streamer.log("My Booleans", True)
        if num % 3 == 0:
            streamer.log("My Events", "pop")
        if num % 10 == 0:
            streamer.log("My Messages", "Stream Half Done")
    streamer.log("My Messages", "Stream Done")
    assert streamer.close()
    assert api_server.buckets == {"example_bucket": "Example Bucket"}
    assert len(api_server.events) == 1 + 19 + 19 + 6 + 1 + 1
    assert all(e["bucket"] == "example_bucket" for e in api_server.events)


def test_value_types_survive(make, api_server):
    """bool, int, float and str arrive as the same JSON types; Decimal becomes float."""
    streamer = make()
    values = {"b": True, "i": 42, "f": 21.5, "s": "on", "d": Decimal("1.25"), "big": 2**40}
    for key, value in values.items():
        streamer.log(key, value)
    assert streamer.flush(5)
    got = {e["key"]: e["value"] for e in api_server.events}
    assert got == {"b": True, "i": 42, "f": 21.5, "s": "on", "d": 1.25, "big": 2**40}
    assert type(got["b"]) is bool and type(got["i"]) is int


def test_epoch_override(make, api_server):
    """An explicit epoch (number or datetime) is sent instead of the current time."""
    streamer = make()
    streamer.log("a", 1, epoch=1_600_000_000.25)
    streamer.log("b", 2, epoch=dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc))
    before = time.time()
    streamer.log("c", 3)
    assert streamer.flush(5)
    got = {e["key"]: e["epoch"] for e in api_server.events}
    assert got["a"] == 1_600_000_000.25
    assert got["b"] == 1_609_459_200.0
    assert before <= got["c"] <= time.time()


@dataclasses.dataclass
class Reading:
    temp: float
    ok: bool


class Sensor:
    def __init__(self):
        self.name = "probe"
        self._secret = "not logged"

    @property
    def level(self):
        return 7


def test_log_object_shapes(make, api_server):
    """dict, list, namedtuple, dataclass, object and psutil results flatten with one epoch."""
    streamer = make()
    Point = collections.namedtuple("Point", "x y")
    streamer.log_object({"a": 1, "nested": {"b": 2}}, key_prefix="dict")
    streamer.log_object([10, 20])
    streamer.log_object(Point(1, 2))
    streamer.log_object(Reading(20.5, True), key_prefix="")
    streamer.log_object(Sensor(), key_prefix="s")
    streamer.log_object(psutil.virtual_memory(), key_prefix="mem", epoch=1_700_000_000)
    assert streamer.flush(5)
    got = {e["key"]: e for e in api_server.events}
    for key, value in {
        "dict_a": 1,
        "dict_nested_b": 2,
        "list_0": 10,
        "list_1": 20,
        "Point_x": 1,
        "Point_y": 2,
        "temp": 20.5,
        "ok": True,
        "s_level": 7,
        "s_name": "probe",
    }.items():
        assert got[key]["value"] == value, key
    assert "s__secret" not in got
    assert {"mem_total", "mem_available", "mem_percent"} <= set(got)
    assert got["mem_total"]["epoch"] == 1_700_000_000
    assert got["dict_a"]["epoch"] == got["dict_nested_b"]["epoch"]


def test_eight_threads_deliver_exactly_once(make, api_server):
    """8 threads × 5000 events are delivered exactly once each."""
    streamer = make(buffer_size=200)

    def produce(t):
        for i in range(5000):
            streamer.log(f"t{t}", i)

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert streamer.flush(30)
    # A burst this fast may overflow memory into the spool; the worker replays it by itself.
    assert api_server.wait_for_events(40_000, timeout=30)
    seen = collections.Counter((e["key"], e["value"]) for e in api_server.events)
    assert len(seen) == 40_000 and set(seen.values()) == {1}
    stats = streamer.stats()
    assert stats["sent"] + stats["replayed"] == 40_000 and stats["dropped"] == 0


def test_single_event_sent_without_flush(make, api_server):
    """One event goes out within about flush_interval, without flush() or close()."""
    streamer = make(flush_interval=0.2, buffer_size=1000)
    streamer.log("slow sensor", 1.0)
    assert api_server.wait_for_events(1, timeout=5)


def test_bad_inputs_beside_good(make, api_server, caplog):
    """Invalid events are counted and warned about, and never poison the batch."""
    streamer = make()
    with caplog.at_level(logging.WARNING, logger="isstreamer"):
        streamer.log("good", 1)
        streamer.log("nan", float("nan"))
        streamer.log("", 2)
        streamer.log("x" * 251, 3)
        streamer.log("none", None)
        streamer.log("long", "y" * 2001)
        streamer.log("list", [1, 2])
        streamer.log("nan", float("inf"))
        streamer.log(7, "key made a string")
    assert streamer.flush(5)
    assert [e["key"] for e in api_server.events] == ["good", "7"]
    assert streamer.stats()["invalid"] == 7
    assert sum("nan" in r.getMessage() for r in caplog.records) == 1  # once per key


@pytest.mark.parametrize("kwargs", [{"strict": True}, {"debug_level": 2}])
def test_strict_mode_raises(make, kwargs):
    """strict=True or debug_level >= 2 raises ValueError/TypeError for bad events."""
    streamer = make(**kwargs)
    with pytest.raises(ValueError):
        streamer.log("nan", float("nan"))
    with pytest.raises(TypeError):
        streamer.log("none", None)


@pytest.mark.slow
def test_close_against_hanging_server(make, api_server):
    """close(timeout) returns near its deadline when the server never answers, events on disk."""
    api_server.hang(times=None)
    streamer = make(timeout=30)
    for i in range(10):
        streamer.log("k", i)
    started = time.monotonic()
    assert not streamer.close(timeout=1.0)  # False: on disk, not delivered
    # Generous for a busy machine; a close waiting for the request would take its 30 s.
    assert time.monotonic() - started < 15.0
    stats = streamer.stats()
    assert stats["spilled"] == 10 and stats["dropped"] == 0


def test_close_is_idempotent_and_log_after_close_reopens(make, api_server, caplog):
    """A second close() is harmless; log() after close warns once, reopens and delivers."""
    streamer = make()
    streamer.log("a", 1)
    assert streamer.close() and streamer.close()
    with caplog.at_level(logging.WARNING, logger="isstreamer"):
        streamer.log("b", 2)
        assert not streamer.IsClosed
        assert streamer.close(5)
        streamer.log("c", 3)
        assert streamer.close(5)
    assert caplog.text.count("after close") == 1
    assert [e["key"] for e in api_server.events] == ["a", "b", "c"]
    stats = streamer.stats()
    assert stats["logged"] == stats["sent"] == 3


def test_log_after_close_is_delivered_at_exit(api_server, access_key, tmp_path):
    """A program that logs after close() and never closes again still delivers at exit."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"""
from isstreamer import Streamer
s = Streamer(access_key={access_key!r}, api_base={api_server.url!r}, bucket_key="b",
             spill_dir={str(tmp_path / "spool")!r})
s.log("before", 1)
s.close()
s.log("after", 2)
""",
        ],
        check=True,
        timeout=60,
    )
    assert [e["key"] for e in api_server.events] == ["before", "after"]


def test_async_def_callable_sink_is_awaited(tmp_path):
    """An async def callable is awaited: its events arrive and only then count as sent."""
    import asyncio

    got = []

    async def collect(batch):
        await asyncio.sleep(0)
        got.extend(batch)

    streamer = Streamer(sink=collect, bucket_key="b", spill_dir=str(tmp_path), buffer_size=5)
    for i in range(10):
        streamer.log("k", i)
    assert streamer.close(5)
    assert [e["value"] for e in got] == list(range(10))
    assert streamer.stats()["sent"] == 10


def test_object_with_async_send_is_awaited_and_failures_spill(tmp_path):
    """An object whose send is a coroutine function is awaited; a RETRY from it spills."""
    import asyncio

    from isstreamer.sinks.base import Outcome, SendResult

    class AsyncSink:
        address = "async-sink"

        def __init__(self):
            self.got, self.fail = [], False
            self.closed = False

        async def send(self, bucket, events):
            await asyncio.sleep(0)
            if self.fail:
                return SendResult(Outcome.RETRY, message="down")
            self.got.extend(e[1] for e in events)
            return SendResult(Outcome.OK)

        async def close(self):
            self.closed = True

    sink = AsyncSink()
    streamer = Streamer(
        sink=sink,
        bucket_key="b",
        spill_dir=str(tmp_path),
        buffer_size=5,
        retry_policy=RetryPolicy(attempts=1, probe_initial=60),
    )
    for i in range(5):
        streamer.log("k", i)
    assert streamer.flush(5)
    sink.fail = True
    for i in range(5, 10):
        streamer.log("k", i)
    assert streamer.flush(5)  # on disk while the sink fails
    assert not streamer.close(1)
    assert sink.got == [0, 1, 2, 3, 4] and sink.closed
    stats = streamer.stats()
    assert stats["sent"] == 5 and stats["on_disk"] == 5


def test_multiprocessing_fork_children_deliver_without_flush(api_server, access_key, tmp_path):
    """Children of a fork Pool/Process that log and never flush still deliver everything."""
    code = f"""
import multiprocessing as mp
from isstreamer import Streamer
s = Streamer(access_key={access_key!r}, api_base={api_server.url!r}, bucket_key="b",
             spill_dir={str(tmp_path / "spool")!r}, buffer_size=100)

def child(n):
    for i in range(1000):
        s.log("child", n * 1000 + i)

def own(n):
    mine = Streamer(access_key={access_key!r}, api_base={api_server.url!r}, bucket_key="b",
                    spill_dir={str(tmp_path / "spool")!r}, buffer_size=100)
    for i in range(1000):
        mine.log("own", n * 1000 + i)

if __name__ == "__main__":
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=child, args=(n,)) for n in range(4)]
    procs += [ctx.Process(target=own, args=(n,)) for n in range(4, 8)]
    for p in procs: p.start()
    for p in procs: p.join()
    assert [p.exitcode for p in procs] == [0] * 8
    s.close()
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    values = sorted(e["value"] for e in api_server.events)
    assert values == list(range(8000))


def test_fast_path_leaves_odd_values_to_validation(make, api_server, monkeypatch):
    """Ints beyond int64 and non-ASCII strings (lone surrogates) take the validating path."""
    from isstreamer import events

    seen = []
    real = events.make_event

    def spy(key, value, epoch=None):
        seen.append(value)
        return real(key, value, epoch)

    monkeypatch.setattr(events, "make_event", spy)
    streamer = make()
    for value in (1, 2**63 - 1, "ascii", 2.5, True):
        streamer.log("k", value)
    assert seen == []
    for value in (2**63, -(2**63) - 1, "caf\udcff", "café"):
        try:
            streamer.log("k", value)
        except ValueError:
            pass
    streamer.log("caf\udcff", 1)
    assert seen == [2**63, -(2**63) - 1, "caf\udcff", "café", 1]


def test_context_manager_closes(make, api_server):
    """Leaving a with block delivers everything."""
    with make() as streamer:
        streamer.log("a", 1)
    assert streamer.IsClosed
    assert len(api_server.events) == 1


def test_set_bucket_switches_after_queued_events(make, api_server):
    """Events logged before set_bucket() go to the old bucket, later ones to the new."""
    streamer = make(bucket_key="old")
    streamer.log("a", 1)
    streamer.set_bucket("New", "new")
    streamer.log("b", 2)
    assert streamer.flush(5)
    assert [(e["key"], e["bucket"]) for e in api_server.events] == [("a", "old"), ("b", "new")]
    assert api_server.buckets["new"] == "New"
    assert streamer.BucketKey == "new"


def test_missing_bucket_key_becomes_uuid_with_warning(make, caplog):
    """No bucket_key: a uuid4 key and a warning that each run makes a new bucket."""
    with caplog.at_level(logging.WARNING, logger="isstreamer"):
        streamer = make(bucket_key="")
    assert len(streamer.BucketKey) == 36
    assert "new bucket" in caplog.text


def test_no_access_key_is_a_clear_error(api_server):
    """Without a key (and not offline) construction fails and says where a key goes."""
    with pytest.raises(ConfigError, match="ISSTREAMER_ACCESS_KEY"):
        Streamer(bucket_key="b", api_base=api_server.url)


def test_ini_file_configures_everything(api_server, access_key, tmp_path):
    """An ISStreamer ini file (plus new keys) is enough to stream."""
    ini = tmp_path / "isstreamer.ini"
    ini.write_text(
        f"[isstreamer.client_config]\naccess_key = {access_key}\ndefault_bucket = From Ini\n"
        f"bucket_key = ini_bucket\nbuffer_size = 3\n[isstreamer.api_config]\n"
        f"stream_api_base = {api_server.url}\n"
    )
    with Streamer(ini_file_location=str(ini)) as streamer:
        assert streamer.BufferSize == 3
        streamer.log("a", 1)
    assert api_server.buckets == {"ini_bucket": "From Ini"}


def test_offline_mode_appends_csv(tmp_path):
    """Offline mode writes epoch,key,value rows with a header and never truncates."""
    target = tmp_path / "readings"
    ini = tmp_path / "isstreamer.ini"
    ini.write_text(f"[isstreamer.client_config]\noffline_mode = true\noffline_file = {target}\n")
    for run in range(2):
        with Streamer(bucket_key="b", ini_file_location=str(ini)) as streamer:
            streamer.log("k", run, epoch=1000 + run)
            streamer.log("on", True, epoch=1000)
    lines = (tmp_path / "readings.csv").read_text().splitlines()
    assert lines == [
        "epoch,key,value",
        "1000.0,k,0",
        "1000.0,on,true",
        "1001.0,k,1",
        "1000.0,on,true",
    ]


def test_sync_mode_sends_on_callers_thread(make, api_server):
    """use_async=False sends a full batch inside log(), with no worker thread."""
    # Workers of earlier tests' Streamers may still be ending: only a new one would be ours.
    before = {t for t in threading.enumerate() if t.name == "isstreamer-worker"}
    streamer = make(use_async=False, buffer_size=5)
    for i in range(5):
        streamer.log("k", i)
    assert len(api_server.events) == 5
    assert not {t for t in threading.enumerate() if t.name == "isstreamer-worker"} - before


def test_callable_sink(tmp_path):
    """A plain callable can replace the HTTP sink."""
    got = []
    with Streamer(sink=got.extend, bucket_key="b", spill_dir=str(tmp_path)) as streamer:
        streamer.log("k", 1)
    assert got[0]["key"] == "k" and got[0]["value"] == 1


def test_access_key_never_logged_at_highest_debug_level(
    make, api_server, access_key, caplog, capfd
):
    """At debug_level 3 neither logs nor output contain the access key, even on 401."""
    api_server.fail(401, times=None)
    with caplog.at_level(logging.DEBUG, logger="isstreamer"):
        streamer = make(debug_level=3)
        streamer.log("k", 1)
        streamer.flush(5)
        streamer.close(2)
    out, err = capfd.readouterr()
    assert "401" in caplog.text
    for text in (caplog.text, out, err, repr(streamer), repr(streamer._sink)):
        assert access_key not in text


def test_stats_has_every_counter(make):
    """stats() has the counters and gauges docs/architecture.md lists."""
    stats = make().stats()
    assert set(stats) >= {
        "logged",
        "invalid",
        "queued",
        "sent",
        "batches",
        "retried",
        "spilled",
        "replayed",
        "quarantined",
        "dropped",
        "spool_files",
        "spool_bytes",
        "last_error",
    }


def test_atexit_closes_forgotten_streamer(api_server, access_key, tmp_path):
    """A program that never calls close() still delivers at exit."""
    code = (
        f"from isstreamer import Streamer\n"
        f"s = Streamer(access_key={access_key!r}, api_base={api_server.url!r}, bucket_key='b', "
        f"buffer_size=100, flush_interval=60, spill_dir={str(tmp_path / 'spool')!r})\n"
        f"for i in range(7): s.log('k', i)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    assert api_server.wait_for_events(7, timeout=5)


def test_keys_whose_str_fails_are_counted_not_raised(make_streamer, caplog):
    """log(10**5000, 1) and a key whose str() raises: no exception, counted invalid, one warning."""

    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no name")

    streamer = make_streamer()
    streamer.log(10**5000, 1)
    streamer.log(Hostile(), 1)
    streamer.log("k", 10**5000)  # beyond a float64: invalid, not a poisoned batch
    streamer.log("caf\udcff", "caf\udcff")  # a lone surrogate: sent as U+FFFD
    assert streamer.stats()["invalid"] == 3
    assert sum("not logged" in r.getMessage() for r in caplog.records) == 3
    assert streamer.flush(10)
    assert streamer.stats()["sent"] == 1 and streamer.stats()["quarantined"] == 0


# ---- ISStreamer's attributes, bucket keys, text epochs, debug_level ----------------------


def test_bucket_attributes_assigned_behave_like_set_bucket(make, api_server):
    """BucketKey/BucketName assignments send later events (only) to the new bucket."""
    streamer = make(bucket_key="old", bucket_name="Old")
    streamer.log("a", 1)
    streamer.BucketKey = "new"
    streamer.BucketName = "New name"
    streamer.log("b", 2)
    assert streamer.flush(5)
    assert [(e["key"], e["bucket"]) for e in api_server.events] == [("a", "old"), ("b", "new")]
    assert streamer.BucketKey == "new" and streamer.BucketName == "New name"
    assert api_server.buckets["new"] == "New name"


def test_set_bucket_accepts_isstreamers_retries_argument(make, api_server):
    """set_bucket(..., retries=3), as ISStreamer code calls it, is accepted and ignored."""
    streamer = make()
    streamer.set_bucket(bucket_name="B", bucket_key="b2", retries=3)
    streamer.log("x", 1)
    assert streamer.flush(5)
    assert api_server.events_for("b2")


@pytest.mark.parametrize("bad", ["a:b", 'quote"d', "it's", "k" * 251])
def test_bucket_key_the_service_refuses_is_a_clear_error(make, bad):
    """':', quotes or over 250 characters fail at construction and in set_bucket(), not later."""
    with pytest.raises(ConfigError, match="bucket_key"):
        make(bucket_key=bad)
    streamer = make()
    with pytest.raises(ConfigError, match="bucket_key"):
        streamer.set_bucket("x", bad)
    assert streamer.BucketKey == "bucket-1"


def test_buffer_size_assignment_changes_the_batch_size(make, api_server):
    """BufferSize = 3 makes a full batch of 3 go out without waiting for flush_interval."""
    streamer = make(buffer_size=50, flush_interval=60)
    streamer.BufferSize = 3
    for i in range(3):
        streamer.log("n", i)
    assert api_server.wait_for_events(3, timeout=10)
    assert streamer.BufferSize == 3
    with pytest.raises(ValueError):
        streamer.BufferSize = 0


def test_access_key_assignment_replays_what_the_old_key_lost(make, api_server, access_key):
    """Events refused with 401 stay on disk; a corrected AccessKey sends them, and later ones."""
    streamer = make(access_key="wrong-key-0000", retry_policy=RetryPolicy(attempts=1))
    streamer.log("early", 1)
    assert streamer.flush(5)  # on disk while the receiver refuses the key
    assert streamer.stats()["on_disk"] == 1 and not api_server.events
    streamer.AccessKey = access_key
    assert streamer.AccessKey == access_key
    streamer.log("late", 2)
    assert streamer.close(10)
    assert sorted(e["key"] for e in api_server.events) == ["early", "late"]
    assert "wrong-key" not in repr(streamer) and access_key not in repr(streamer)


def test_stream_api_base_assignment_moves_later_batches(make, api_server, access_key):
    """StreamApiBase = <other server> sends the following batches there."""
    from tests.apiserver import ApiServer

    streamer = make()
    streamer.log("first", 1)
    assert streamer.flush(5)
    with ApiServer(access_keys=(access_key,)) as other:
        streamer.StreamApiBase = other.url
        assert streamer.StreamApiBase == other.url
        streamer.log("second", 2)
        assert streamer.flush(5)
        assert [e["key"] for e in other.events] == ["second"]
    assert [e["key"] for e in api_server.events] == ["first"]


def test_offline_and_debug_level_assignments(make, tmp_path):
    """Offline = True writes later events to the CSV file; DebugLevel = 2 makes log() strict."""
    streamer = make()
    streamer.settings.values["offline_file"] = str(tmp_path / "out.csv")
    streamer.Offline = True
    streamer.log("t", 21.5, epoch=1_600_000_000)
    assert streamer.flush(5) and streamer.Offline
    assert "t,21.5" in (tmp_path / "out.csv").read_text()
    streamer.DebugLevel = 2
    assert streamer.DebugLevel == 2
    with pytest.raises(ValueError):
        streamer.log("bad", float("nan"))
    streamer.DebugLevel = 0  # back to warnings: counted, not raised
    streamer.log("bad", float("nan"))
    assert streamer.stats()["invalid"] == 2


def test_epoch_as_text_is_delivered(make, api_server):
    """A CSV reader's epochs as text (seconds or ISO 8601) arrive as numbers."""
    streamer = make()
    streamer.log("a", 1, epoch="1600000000.5")
    streamer.log("b", 2, epoch="2020-09-13T12:26:40Z")
    streamer.log_object({"c": 3}, key_prefix="", epoch="1600000001")
    assert streamer.flush(5)
    got = {e["key"]: e["epoch"] for e in api_server.events}
    assert got == {"a": 1_600_000_000.5, "b": 1_600_000_000.0, "c": 1_600_000_001.0}


def _child(code: str, api_server) -> subprocess.CompletedProcess:
    code = "import logging, sys\nfrom isstreamer import Streamer\n" + code
    return subprocess.run(
        [sys.executable, "-c", code, api_server.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_debug_level_1_logs_each_batch_at_info_without_the_key(api_server, access_key):
    """A program without logging setup sees one INFO line per batch (size, bucket), no key."""
    out = _child(
        f"""
s = Streamer(bucket_key="pi", bucket_name="Pi", access_key={access_key!r}, api_base=sys.argv[1],
             debug_level=1, buffer_size=2)
s.log("a", 1); s.log("b", 2)
assert s.flush(10)
s.close()
""",
        api_server,
    )
    assert "sent 2 events to bucket 'pi' (Pi)" in out.stderr
    assert access_key not in out.stderr + out.stdout


def test_debug_level_never_overrides_the_applications_logging(api_server, access_key):
    """After basicConfig(level=DEBUG) the library's debug lines show whatever debug_level is."""
    out = _child(
        f"""
logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(message)s")
for level in (0, 1):
    s = Streamer(bucket_key="pi", access_key={access_key!r}, api_base=sys.argv[1],
                 debug_level=level)
    assert logging.getLogger("isstreamer").level == logging.NOTSET
    assert logging.getLogger("isstreamer").handlers == []
    s.log("a", 1)
    assert s.close(10)
""",
        api_server,
    )
    assert out.stderr.count("DEBUG streaming to") == 2
    assert out.stderr.count("INFO sent 1 events") == 2
