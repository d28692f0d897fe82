"""The agent's status file (isstreamer/status.py): private, atomic, rate-limited, never taken
for a spill file, and believed only while its writer lives."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from isstreamer.sinks.base import Bucket
from isstreamer.spool import Spool
from isstreamer.status import StatusFile, read_statuses, status_name


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_written_private_and_read_back_as_running(tmp_path: Path) -> None:
    """The file is 0600 in a 0700 directory, holds the payload, and reads back as running."""
    status = StatusFile(tmp_path / "spool", "metrics")
    assert status.write({"samples": 3}, interval_s=10)
    assert stat.S_IMODE(status.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(status.path.parent.stat().st_mode) == 0o700
    [doc] = read_statuses(tmp_path / "spool")
    assert doc["running"] is True and doc["samples"] == 3 and doc["pid"] == os.getpid()
    assert doc["stale_after_s"] == 90  # 3 rewrites of 30 s missed
    status.remove()
    assert read_statuses(tmp_path / "spool") == []


def test_rewrites_at_most_every_so_often(tmp_path: Path) -> None:
    """Between rewrites write() does nothing unless forced, so an SD card sees few writes."""
    clock = Clock()
    status = StatusFile(tmp_path / "spool", "metrics", every_s=30, clock=clock)
    assert status.write({"n": 1}, interval_s=1)
    clock.now += 29
    assert not status.write({"n": 2}, interval_s=1)
    assert status.write({"n": 3}, interval_s=1, force=True)
    clock.now += 30
    assert status.write({"n": 4}, interval_s=1)
    assert json.loads(status.path.read_text())["n"] == 4
    assert [p.name for p in status.directory.iterdir()] == [status.path.name]  # no temp left


def test_stale_dead_or_foreign_files_are_not_running(tmp_path: Path) -> None:
    """A file past its stale time, of a dead pid, or of another boot is shown as not running."""
    clock = Clock()
    status = StatusFile(tmp_path / "spool", "metrics", clock=clock)
    status.write({}, interval_s=10)
    spool = status.directory
    assert read_statuses(spool, clock)[0]["running"]
    clock.now += 91
    assert not read_statuses(spool, clock)[0]["running"]
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(child.stdout)
    doc = json.loads(status.path.read_text())
    (spool / status_name("metrics", dead)).write_text(
        json.dumps(dict(doc, pid=dead, updated_monotonic=clock.now))
    )
    (spool / status_name("metrics", 1)).write_text(
        json.dumps(dict(doc, pid=1, boot_id="another-boot", updated_monotonic=clock.now))
    )
    (spool / status_name("metrics", 2)).write_text("{not json")
    found = {d["pid"]: d["running"] for d in read_statuses(spool, clock)}
    assert found == {os.getpid(): False, dead: False, 1: False}


def test_never_a_spill_file_and_never_through_a_symlink(tmp_path: Path) -> None:
    """The spool neither lists nor counts the status file; a symlink in its place is replaced."""
    spool = Spool(tmp_path / "spool")
    spool.write(Bucket("b"), [("k", 1, 1_790_000_000.0)], sink="http://h")
    status = StatusFile(spool.directory, "metrics")
    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.symlink(victim, status.path)
    assert status.write({"samples": 1}, interval_s=10)
    assert victim.read_text() == "keep" and not status.path.is_symlink()
    assert len(spool.files()) == 1 and spool.usage()[0] == 1
