"""Wall-clock steps: default epochs re-stamped, given ones never, with injected clocks."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from typing import Any

import pytest

from isstreamer.buffer import Buffer
from isstreamer.clock import ClockWatch
from isstreamer.events import FixedEpoch
from isstreamer.stats import Stats


class Clocks:
    """A monotonic clock and a wall clock that can be stepped apart from it."""

    def __init__(self) -> None:
        self.mono_s = 100.0
        self.offset_s = 1_000_000.0  # a Pi that booted with fake-hwclock's stale time

    def mono(self) -> float:
        return self.mono_s

    def wall(self) -> float:
        return self.mono_s + self.offset_s

    def tick(self, seconds: float) -> None:
        self.mono_s += seconds


def _log(buffer: Buffer, clocks: Clocks, key: str, epoch: Any = None) -> None:
    buffer.append((key, 1, clocks.wall() if epoch is None else FixedEpoch(epoch)))


def _take(watch: ClockWatch, buffer: Buffer) -> list[Any]:
    first = buffer.taken
    watch.check(buffer)
    token, items = buffer.take(1000)
    if watch.steps:
        watch.restamp(first, items)
    buffer.done(token)
    return items


@pytest.mark.parametrize("step_s", [3600.0, -3600.0, 2.5])
def test_default_epochs_before_a_step_move_given_ones_never(step_s: float) -> None:
    """Events logged before the step move by it; given epochs and later events stay."""
    clocks, stats, buffer = Clocks(), Stats(), Buffer()
    watch = ClockWatch(stats, wall=clocks.wall, mono=clocks.mono)
    _log(buffer, clocks, "early")
    clocks.tick(0.5)
    _log(buffer, clocks, "given", epoch=1_600_000_000.0)
    _log(buffer, clocks, "early2")
    clocks.tick(0.1)
    before = [item[2] for item in buffer.items]
    clocks.offset_s += step_s  # NTP steps the clock
    clocks.tick(0.1)
    _log(buffer, clocks, "late")
    late = buffer.items[-1][2]
    clocks.tick(0.1)
    got = {key: epoch for key, _, epoch in _take(watch, buffer)}
    assert got["early"] == pytest.approx(before[0] + step_s)
    assert got["early2"] == pytest.approx(before[2] + step_s)
    assert got["given"] == 1_600_000_000.0
    assert got["late"] == late
    assert stats.snapshot()["restamped"] == 2


def test_events_of_the_window_are_told_apart_by_their_epochs() -> None:
    """Events logged between two checks go on the side of the step their epochs show."""
    clocks, stats, buffer = Clocks(), Stats(), Buffer()
    watch = ClockWatch(stats, wall=clocks.wall, mono=clocks.mono)
    _log(buffer, clocks, "a")
    _take(watch, buffer)  # a check: what follows is in the next window
    for i in range(3):
        clocks.tick(0.2)
        _log(buffer, clocks, f"pre{i}")
    clocks.offset_s += 600
    for i in range(3):
        clocks.tick(0.2)
        _log(buffer, clocks, f"post{i}")
    expected = {k: e + (600 if k.startswith("pre") else 0) for k, _, e in buffer.items}
    got = {k: e for k, _, e in _take(watch, buffer)}
    assert got == pytest.approx(expected)
    assert stats.snapshot()["restamped"] == 3


def test_no_step_no_change_and_one_log_line_per_step(caplog: pytest.LogCaptureFixture) -> None:
    """Drift under 2 s changes nothing; a step is said once, however many batches follow."""
    clocks, stats, buffer = Clocks(), Stats(), Buffer()
    watch = ClockWatch(stats, wall=clocks.wall, mono=clocks.mono)
    _log(buffer, clocks, "a")
    clocks.offset_s += 1.5
    assert _take(watch, buffer)[0][2] == clocks.wall() - 1.5
    with caplog.at_level(logging.WARNING, logger="isstreamer"):
        for _ in range(5):
            _log(buffer, clocks, "b")
        clocks.offset_s += 100
        for _ in range(3):
            clocks.tick(1)
            _log(buffer, clocks, "c")
            _take(watch, buffer)
    assert caplog.text.count("wall clock was stepped by +100.0 s") == 1
    assert stats.snapshot()["restamped"] == 5


def test_own_spill_file_is_restamped_once_others_never() -> None:
    """A file this process spilled moves by a later step (once); an unknown file is kept."""
    clocks, stats = Clocks(), Stats()
    watch = ClockWatch(stats, wall=clocks.wall, mono=clocks.mono)
    events = [("a", 1, clocks.wall()), ("b", 2, FixedEpoch(1_600_000_000.0))]
    watch.spilled("batch1", events)
    on_disk = [(k, v, float(e)) for k, v, e in events]  # what a file gives back
    clocks.offset_s += 3600
    fixed = watch.restamp_file("batch1", on_disk)
    assert fixed == [("a", 1, on_disk[0][2] + 3600), ("b", 2, 1_600_000_000.0)]
    assert watch.restamp_file("batch1", fixed) == fixed  # rewritten from these: not again
    assert watch.restamp_file("other", on_disk) == on_disk
    assert stats.snapshot()["restamped"] == 1


# ---- end to end, in a child whose time.time() is stepped (the system clock never is) -----

CHILD = r"""
import json, sys, time
real_time = time.time
shift = [0.0]
time.time = lambda: real_time() + shift[0]  # before isstreamer is imported: it binds time.time
from isstreamer import RetryPolicy, Streamer

url, key, spill, mode = sys.argv[1:5]
s = Streamer(bucket_key="pi", access_key=key, api_base=url, spill_dir=spill,
             flush_interval=60, buffer_size=1000, fix_clock_steps=(mode != "off"),
             retry_policy=RetryPolicy(attempts=1, probe_initial=0.05, probe_max=0.1))
s.log("early", 1)
s.log("given", 2, epoch=1_600_000_000.5)
s.log_object({"obj": 3}, key_prefix="")
before = time.time()
if mode == "spilled":
    assert s.flush(10)  # the receiver fails: on disk
    assert s.stats()["on_disk"] == 3, s.stats()
    print("SPILLED", flush=True)
    sys.stdin.readline()  # the parent lets the receiver answer again
shift[0] = 3600.0  # NTP steps the clock forward by an hour
s.log("late", 4)
assert s.close(20), s.stats()
print(json.dumps({"before": before, "stats": s.stats()}))
"""


def _run_child(api_server: Any, access_key: str, tmp_path: Any, mode: str) -> dict:
    args = [sys.executable, "-c", CHILD, api_server.url, access_key, str(tmp_path / "spool"), mode]
    child = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        if mode == "spilled":
            assert child.stdout is not None and child.stdin is not None
            assert child.stdout.readline().strip() == "SPILLED"
            api_server.clear()
            child.stdin.write("\n")
            child.stdin.flush()
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    result["stderr"] = err
    return result


@pytest.mark.parametrize("mode", ["memory", "spilled"])
def test_step_restamps_undelivered_default_epochs_end_to_end(
    api_server: Any, access_key: str, tmp_path: Any, mode: str
) -> None:
    """In memory or in own spill files: pre-step default epochs move by the hour, no others."""
    if mode == "spilled":
        api_server.fail(500, times=None)
    result = _run_child(api_server, access_key, tmp_path, mode)
    got = {e["key"]: e["epoch"] for e in api_server.events}
    before = result["before"]
    assert before + 3600 - 30 < got["early"] <= before + 3600
    assert before + 3600 - 30 < got["obj"] <= before + 3600  # log_object's default epoch too
    assert got["given"] == 1_600_000_000.5
    assert got["late"] >= before + 3600
    assert result["stats"]["restamped"] == 2
    assert result["stderr"].count("wall clock was stepped by +3600") <= 1


def test_restamping_can_be_turned_off(api_server: Any, access_key: str, tmp_path: Any) -> None:
    """fix_clock_steps=False sends the epochs as they were taken."""
    result = _run_child(api_server, access_key, tmp_path, "off")
    got = {e["key"]: e["epoch"] for e in api_server.events}
    assert got["early"] <= result["before"]
    assert result["stats"]["restamped"] == 0


WRITER = r"""
import sys
import time
from isstreamer import RetryPolicy, Streamer

url, key, spill = sys.argv[1:4]
s = Streamer(bucket_key="pi", access_key=key, api_base=url, spill_dir=spill, buffer_size=1000,
             retry_policy=RetryPolicy(attempts=1, probe_initial=30, probe_max=30))
s.log("early", 1)
s.log("given", 2, epoch=1_600_000_000.5)
assert s.flush(10) and s.stats()["on_disk"] == 2, s.stats()  # the receiver fails: on disk
assert not s.close(0.5)  # still on disk: delivered by the next process
"""

READER = r"""
import json, sys, time
real_time = time.time
time.time = lambda: real_time() + 3600.0  # NTP stepped the clock since the writer ran
from isstreamer import Streamer

url, key, spill = sys.argv[1:4]
s = Streamer(bucket_key="pi", access_key=key, api_base=url, spill_dir=spill)
assert s.replay(20)
s.close(10)
print(json.dumps(s.stats()))
"""


def test_another_process_of_the_same_boot_restamps_a_spill_file(
    api_server: Any, access_key: str, tmp_path: Any
) -> None:
    """Another process of the same boot replays a spill file after a step: defaults move."""
    spill = str(tmp_path / "spool")
    api_server.fail(500, times=None)
    before = time.time()
    writer = subprocess.run(
        [sys.executable, "-c", WRITER, api_server.url, access_key, spill],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert writer.returncode == 0, writer.stderr
    api_server.clear()
    reader = subprocess.run(
        [sys.executable, "-c", READER, api_server.url, access_key, spill],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert reader.returncode == 0, reader.stderr
    got = {e["key"]: e["epoch"] for e in api_server.events}
    assert before + 3600 - 30 < got["early"] <= before + 3600 + 30
    assert got["given"] == 1_600_000_000.5
    assert json.loads(reader.stdout.strip().splitlines()[-1])["restamped"] == 1
    assert "default epochs re-stamped" in reader.stderr
