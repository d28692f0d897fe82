"""Spill files: durable writes, naming, claiming, release, stale claims, quarantine, quota."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from isstreamer.sinks.base import Bucket
from isstreamer.sinks.initialstate import InitialStateSink
from isstreamer.spool import (
    FORMAT_VERSION,
    QUARANTINE,
    CorruptSpillFile,
    Spool,
    decode_batch,
    encode_batch,
    event_count,
)
from isstreamer.spool import split as spool_split
from isstreamer.spool.format import BOOT_ID
from isstreamer.spool.names import order_for, original_name, parse_name, spill_name, superseded
from isstreamer.spool.selection import Selection

ACCESS_KEY = "ist_0123456789abcdefSECRETa1b2"
BUCKET = Bucket("bucket-key", "Bucket Name")
EVENTS = [
    ("temp", 21.5, 1700000000.25),
    ("on", True, 1700000001.0),
    ("n", 3, 1700000002.0),
    ("s", "text, with comma", 1700000003.0),
]
SINK = "http://127.0.0.1:9/api"
NAME = re.compile(r"^s(\d{20})-(\d{8}T\d{6}\.\d{6})-[0-9a-f]{12}-n(\d+)\.json$")


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool")


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def lock_is_free(path: Path) -> bool:
    """True when nobody holds a flock on the file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def make_claim(path: Path, pid: int, token: str = "deadbeef") -> Path:
    """Rename a spill file the way another process's Spool.claim() would have."""
    claimed = path.with_name(f"{path.name}.claim.{pid}.{token}")
    os.rename(path, claimed)
    return claimed


# ---- writing ----------------------------------------------------------------------------


def test_write_creates_private_dir_and_file(spool: Spool) -> None:
    """The spool dir is 0700 and each file 0600, whatever the umask."""
    old = os.umask(0)
    try:
        path = spool.write(BUCKET, EVENTS, sink=SINK)
    finally:
        os.umask(old)
    assert stat.S_IMODE(spool.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.parent == spool.directory


def test_existing_open_dir_is_tightened(tmp_path: Path) -> None:
    """A spool dir created 0755 by someone else is made 0700 before the first write."""
    directory = tmp_path / "open"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    Spool(directory).write(BUCKET, EVENTS, sink=SINK)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_file_name_carries_sequence_time_and_count(spool: Spool) -> None:
    """The name is s<seq>-<UTC stamp>-<id>-n<events>.json; event_count() reads the count from it."""
    path = spool.write(BUCKET, EVENTS, sink=SINK, created=1700000000.25)
    m = NAME.match(path.name)
    assert m, path.name
    assert m.group(2) == "20231114T221320.250000"
    assert int(m.group(3)) == len(EVENTS) == event_count(path)
    assert event_count(Path("not-a-spill-file.json")) == 0
    assert event_count(Path("20231114T221320.250000-abc-n7.json")) == 7  # an older version's name


def test_names_sort_by_writing_order_whatever_the_clock(spool: Spool) -> None:
    """A sort by name is the order of writing, also when the wall clock steps back or forward."""
    times = [1900000000.0, 1700000000.999999, 1700000001.0, 1600000000.5, 1.0]
    written = [spool.write(BUCKET, EVENTS[:1], sink=SINK, created=t).name for t in times]
    assert sorted(written) == written
    assert [p.name for p in spool.files()] == written


def test_sequence_is_shared_by_spools_and_survives_a_lost_counter(spool: Spool) -> None:
    """Spools on one directory share one sequence; a lost counter restarts above the files."""
    first = spool.write(BUCKET, EVENTS, sink=SINK)
    second = Spool(spool.directory).write(BUCKET, EVENTS, sink=SINK)
    third = spool.write(BUCKET, EVENTS, sink=SINK)
    assert [first.name, second.name, third.name] == sorted([first.name, second.name, third.name])
    (spool.directory / ".seq").unlink()  # a power cut before the counter reached the disk
    fourth = Spool(spool.directory).write(BUCKET, EVENTS, sink=SINK)
    assert fourth.name > third.name


def test_old_names_sort_before_new_ones(spool: Spool) -> None:
    """Old-format names (<UTC>-<id>-n<count>.json) are listed first and are claimable."""
    new = spool.write(BUCKET, EVENTS, sink=SINK, created=1.0)
    old = spool.directory / "20991231T000000.000000-0123456789ab-n4.json"
    old.write_bytes(new.read_bytes())
    assert spool.files() == [old, new]
    claimed = spool.claim(old)
    assert claimed is not None and event_count(claimed) == 4
    assert spool.load(claimed).events == EVENTS


def test_file_content(spool: Spool) -> None:
    """The file holds format, id, created, sink, bucket, attempts, last_error, clocks, events."""
    path = spool.write(
        BUCKET,
        EVENTS,
        sink=SINK,
        attempts=3,
        last_error="503 Service Unavailable",
        created=1700000000.5,
        batch_id="abc123",
    )
    doc = json.loads(path.read_bytes())
    offset = doc.pop("wall_minus_monotonic")
    assert abs(offset - (time.time() - time.monotonic())) < 60
    assert doc == {
        "format": FORMAT_VERSION,
        "id": "abc123",
        "created": 1700000000.5,
        "sink": SINK,
        "bucket_key": "bucket-key",
        "bucket_name": "Bucket Name",
        "attempts": 3,
        "last_error": "503 Service Unavailable",
        "boot_id": BOOT_ID,
        "fixed": [],  # no given epochs among EVENTS (plain floats)
        "events": [list(e) for e in EVENTS],
    }
    assert list(json.loads(path.read_bytes()))[-1] == "events"  # last, for the streaming reader


def test_clock_metadata_is_read_back_and_optional(spool: Spool) -> None:
    """boot_id and wall_minus_monotonic are read back; a file without them still loads."""
    path = spool.write(BUCKET, EVENTS, sink=SINK, boot_id="b-1", wall_minus_monotonic=12.5)
    claimed = spool.claim(path)
    assert claimed is not None
    batch = spool.load(claimed)
    assert batch.boot_id == "b-1" and batch.wall_minus_monotonic == 12.5
    old = json.loads(path.with_name(claimed.name).read_bytes())
    del old["boot_id"], old["wall_minus_monotonic"]
    batch = decode_batch(Path("x.json"), json.dumps(old).encode())
    assert batch.boot_id == "" and batch.wall_minus_monotonic is None and batch.events == EVENTS


def test_file_never_holds_the_access_key(spool: Spool) -> None:
    """Written with the HTTP sink's address (from a URL with credentials), no key is on disk."""
    sink = InitialStateSink(
        f"https://user:{ACCESS_KEY}@groker.example:8443/base/?accessKey={ACCESS_KEY}", ACCESS_KEY
    )
    try:
        path = spool.write(BUCKET, EVENTS, sink=sink.address, last_error="401 refused")
    finally:
        sink.close()
    data = path.read_text()
    assert json.loads(data)["sink"] == "https://groker.example:8443/base"
    assert ACCESS_KEY not in data and "SECRET" not in data and "user" not in data


def test_write_leaves_no_temp_files(spool: Spool) -> None:
    """After a write only the final file is in the directory."""
    spool.write(BUCKET, EVENTS, sink=SINK)
    listed = sorted(p.name for p in spool.directory.iterdir())
    assert listed == [".seq"] + [p.name for p in spool.files()]


def test_round_trip_keeps_types(spool: Spool) -> None:
    """Loading a file gives back the bucket and the events with their types."""
    path = spool.write(BUCKET, EVENTS, sink=SINK, attempts=2, last_error="x", batch_id="id1")
    claimed = spool.claim(path)
    assert claimed is not None
    batch = spool.load(claimed)
    assert batch.path == claimed and batch.id == "id1" and batch.sink == SINK
    assert batch.bucket == BUCKET and batch.attempts == 2 and batch.last_error == "x"
    assert batch.events == EVENTS
    assert [type(v) for _, v, _ in batch.events] == [float, bool, int, str]


# ---- listing and usage ------------------------------------------------------------------


def test_files_oldest_first_and_ignores_others(spool: Spool) -> None:
    """files() lists only unclaimed spill files, oldest first."""
    older = spool.write(BUCKET, EVENTS, sink=SINK, created=1700000100.0)
    newer = spool.write(BUCKET, EVENTS, sink=SINK, created=1700000000.0)
    claimed = spool.claim(spool.write(BUCKET, EVENTS, sink=SINK, created=1600000000.0))
    (spool.directory / ".partial.json.tmp").write_text("x")
    (spool.directory / "notes.txt").write_text("x")
    spool.quarantine(spool.write(BUCKET, EVENTS, sink=SINK, created=1500000000.0), "bad")
    assert spool.files() == [older, newer]
    assert claimed is not None and claimed.exists()


def test_files_of_missing_dir_is_empty(tmp_path: Path) -> None:
    """A spool whose directory does not exist yet lists nothing and uses nothing."""
    spool = Spool(tmp_path / "not-yet")
    assert spool.files() == [] and spool.usage() == (0, 0)
    assert spool.reclaim_stale() == 0


def test_usage_counts_claimed_but_not_quarantined(spool: Spool) -> None:
    """usage() counts files being sent, but not quarantined ones."""
    a = spool.write(BUCKET, EVENTS, sink=SINK)
    claimed = spool.claim(spool.write(BUCKET, EVENTS, sink=SINK))
    spool.quarantine(spool.write(BUCKET, EVENTS, sink=SINK), "bad")
    assert claimed is not None
    assert spool.usage() == (2, a.stat().st_size + claimed.stat().st_size)


# ---- claiming ---------------------------------------------------------------------------


def test_claim_renames_and_second_claim_gets_none(spool: Spool, tmp_path: Path) -> None:
    """A claimed file leaves the listing; claiming it again (here or elsewhere) returns None."""
    path = spool.write(BUCKET, EVENTS, sink=SINK)
    claimed = spool.claim(path)
    assert claimed is not None and claimed.exists() and not path.exists()
    assert f".claim.{os.getpid()}." in claimed.name
    assert spool.files() == []
    assert spool.claim(path) is None
    assert Spool(spool.directory).claim(path) is None


def test_claim_holds_a_lock_until_released(spool: Spool) -> None:
    """A claimed file is flock'ed while held, and free again once given back."""
    path = spool.write(BUCKET, EVENTS, sink=SINK)
    claimed = spool.claim(path)
    assert claimed is not None
    assert not lock_is_free(claimed)
    spool.release(spool.load(claimed))
    assert lock_is_free(path)


def test_release_unchanged_puts_file_back(spool: Spool) -> None:
    """release() of an untouched batch gives the file back under its original name."""
    path = spool.write(BUCKET, EVENTS, sink=SINK)
    claimed = spool.claim(path)
    assert claimed is not None
    spool.release(spool.load(claimed))
    assert spool.files() == [path] and not claimed.exists()


def test_release_with_fewer_events_rewrites(spool: Spool) -> None:
    """release() with the remainder rewrites it: same id and place, fewer events, +1 attempt."""
    path = spool.write(BUCKET, EVENTS, sink=SINK, created=1700000000.0, batch_id="b1", attempts=1)
    claimed = spool.claim(path)
    assert claimed is not None
    batch = spool.load(claimed)
    spool.release(batch, EVENTS[2:], last_error="503")
    assert not claimed.exists()
    [rewritten] = spool.files()
    assert event_count(rewritten) == 2
    assert rewritten.name[:22] == path.name[:22]  # the same UTC stamp: it keeps its place in line
    doc = json.loads(rewritten.read_bytes())
    assert doc["id"] == "b1" and doc["events"] == [list(e) for e in EVENTS[2:]]
    assert doc["attempts"] == 2 and doc["last_error"] == "503"
    assert spool.usage()[0] == 1


def test_rewrite_killed_before_deleting_the_old_file_leaves_the_new_one(tmp_path: Path) -> None:
    """A dead claim beside the rewritten rest of it (same order and id): the old copy is removed."""
    old = Spool(tmp_path / "spool")
    claimed = old.claim(old.write(BUCKET, EVENTS, sink=SINK))
    assert claimed is not None
    parsed = parse_name(original_name(claimed.name))
    assert parsed is not None
    rest = old.write(BUCKET, EVENTS[3:], sink=SINK, order=parsed.order, name_id=parsed.id)
    old._claims.forget_in_child()  # as if the process died before deleting the claim
    fresh = Spool(tmp_path / "spool")
    assert fresh.reclaim_stale() == 1
    assert fresh.files() == [rest] and event_count(rest) == 1


def test_superseded_names_only_the_older_copies_of_a_rewrite() -> None:
    """Of files sharing order and id the one with fewest events stays; other files are left."""
    first, second = order_for(1, 1.7e9), order_for(2, 1.7e9)
    a5, a2 = spill_name(first, "aa", 5), spill_name(first, "aa", 2)
    b4 = spill_name(first, "bb", 4)
    other = spill_name(second, "aa", 5)  # the same id in another place: another batch
    assert superseded([a5, b4, a2, other, "not-a-spill-file"]) == [a5]
    assert superseded([a2, a5]) == [a5] and superseded([b4]) == []


def test_release_with_new_error_rewrites_in_place(spool: Spool) -> None:
    """release() with a new last_error records it over the same file name: one copy at all times."""
    path = spool.write(BUCKET, EVENTS, sink=SINK)
    claimed = spool.claim(path)
    assert claimed is not None
    spool.release(spool.load(claimed), last_error="timeout")
    assert spool.files() == [path] and not claimed.exists()
    doc = json.loads(path.read_bytes())
    assert doc["last_error"] == "timeout" and doc["attempts"] == 1
    assert len(doc["events"]) == len(EVENTS)
    assert lock_is_free(path) and spool._claims.names() == []  # no lock or fd kept


def test_replace_killed_before_its_rename_leaves_one_copy(tmp_path: Path) -> None:
    """A dead claim beside the whole temp file of its new version becomes one file, not two."""
    old = Spool(tmp_path / "spool")
    claimed = old.claim(old.write(BUCKET, EVENTS, sink=SINK))
    assert claimed is not None
    newer = json.loads(claimed.read_bytes()) | {"last_error": "timeout"}
    (claimed.parent / f".{claimed.name}.tmp").write_text(json.dumps(newer))
    old._claims.forget_in_child()  # as if the process died: its locks are gone
    fresh = Spool(tmp_path / "spool")
    assert fresh.reclaim_stale() == 1
    [left] = fresh.files()
    assert len(json.loads(left.read_bytes())["events"]) == len(EVENTS)
    rest = [p.name for p in left.parent.iterdir() if p.is_file() and p.name != ".seq"]
    assert rest == [left.name]  # the temp file is gone too


def test_release_with_nothing_remaining_deletes(spool: Spool) -> None:
    """release() with an empty remainder leaves no file behind."""
    claimed = spool.claim(spool.write(BUCKET, EVENTS, sink=SINK))
    assert claimed is not None
    spool.release(spool.load(claimed), [])
    assert spool.files() == [] and spool.usage() == (0, 0)


def test_delete_removes_claimed_file(spool: Spool) -> None:
    """delete() removes a claimed file; deleting it twice is harmless."""
    claimed = spool.claim(spool.write(BUCKET, EVENTS, sink=SINK))
    assert claimed is not None
    spool.delete(claimed)
    spool.delete(claimed)
    assert spool.usage() == (0, 0)


def test_stale_claim_of_dead_process_is_reclaimed(spool: Spool) -> None:
    """A claim left by a process that no longer exists is renamed back to a claimable file."""
    path = spool.write(BUCKET, EVENTS, sink=SINK)
    make_claim(path, dead_pid())
    assert spool.files() == []
    assert spool.reclaim_stale() == 1
    assert spool.files() == [path]
    assert spool.claim(path) is not None


def test_live_claim_is_not_reclaimed(spool: Spool) -> None:
    """A claim held by a running process (another Spool in this one) is left alone."""
    other = Spool(spool.directory)
    path = spool.write(BUCKET, EVENTS, sink=SINK)
    claimed = other.claim(path)
    assert claimed is not None
    assert spool.reclaim_stale() == 0
    assert claimed.exists() and spool.files() == []


def test_own_claim_is_not_reclaimed(spool: Spool) -> None:
    """A Spool never takes back its own claim, however old."""
    claimed = spool.claim(spool.write(BUCKET, EVENTS, sink=SINK))
    assert claimed is not None
    os.utime(claimed, (1, 1))
    assert spool.reclaim_stale(max_age=0) == 0 and claimed.exists()


def test_very_old_live_claim_is_not_reclaimed(spool: Spool) -> None:
    """A live claim is never taken over, however old its file looks (ages follow clocks)."""
    other = Spool(spool.directory)
    path = spool.write(BUCKET, EVENTS, sink=SINK)
    claimed = other.claim(path)
    assert claimed is not None
    os.utime(claimed, (1, 1))
    assert spool.reclaim_stale(max_age=0) == 0
    assert claimed.exists() and spool.files() == []


def test_release_own_claims(spool: Spool) -> None:
    """On close a Spool gives back its own claims but not another Spool's."""
    other = Spool(spool.directory)
    mine = spool.write(BUCKET, EVENTS, sink=SINK, created=1.0)
    theirs = spool.write(BUCKET, EVENTS, sink=SINK, created=2.0)
    spool.claim(mine)
    other_claim = other.claim(theirs)
    spool.release_own_claims()
    assert spool.files() == [mine]
    assert other_claim is not None and other_claim.exists()


# ---- quarantine and corrupt files -------------------------------------------------------


def test_quarantine_moves_file_and_writes_reason(
    spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    """quarantine() moves a claimed file to quarantine/ by its name, with a .reason, and logs it."""
    path = spool.write(BUCKET, EVENTS, sink=SINK)
    claimed = spool.claim(path)
    assert claimed is not None
    with caplog.at_level(logging.ERROR, logger="isstreamer"):
        target = spool.quarantine(claimed, "400 Bad Request: BUCKET_REMOVED")
    assert target == spool.directory / QUARANTINE / path.name
    assert target.exists() and not claimed.exists()
    reason = target.with_name(target.name + ".reason")
    assert reason.read_text() == "400 Bad Request: BUCKET_REMOVED\n"
    assert stat.S_IMODE(reason.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert spool.files() == [] and spool.usage() == (0, 0)
    messages = [r.getMessage() for r in caplog.records]
    assert any("BUCKET_REMOVED" in m and path.name in m for m in messages)


def test_quarantine_batch_writes_straight_to_quarantine(spool: Spool) -> None:
    """A batch the receiver rejected is written directly into the quarantine with its reason."""
    target = spool.quarantine_batch(BUCKET, EVENTS, sink=SINK, reason="400 bad")
    assert target.parent.name == QUARANTINE
    assert json.loads(target.read_bytes())["last_error"] == "400 bad"
    assert target.with_name(target.name + ".reason").read_text() == "400 bad\n"
    assert spool.files() == []


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xffgarbage",
        b"{not json",
        b"[]",
        b"null",
        b'{"format": 2, "events": []}',
        b'{"format": 1}',
        b'{"format": 1, "id": "x", "created": 1, "sink": "s", "bucket_key": "b",'
        b' "events": [["k", 1]]}',
        b'{"format": 1, "id": "x", "created": 1, "sink": "s", "bucket_key": "b", "events": 5}',
        b'{"format": 1, "id": "x", "created": "later", "sink": "s", "bucket_key": "b",'
        b' "events": []}',
    ],
)
def test_decode_garbage_raises_corrupt(data: bytes) -> None:
    """Anything that is not a valid spill document raises CorruptSpillFile, never another error."""
    with pytest.raises(CorruptSpillFile):
        decode_batch(Path("x.json"), data)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "null", '{"a": 1}', "[1, 2]"])
def test_decode_rejects_values_that_cannot_be_sent(value: str) -> None:
    """A value no receiver accepts (NaN, null, objects) makes the file corrupt (quarantined)."""
    data = (
        '{"format": 1, "id": "x", "created": 1, "sink": "s", "bucket_key": "b", '
        f'"events": [["ok", 1, 1.0], ["k", {value}, 2.0]]}}'
    ).encode()
    with pytest.raises(CorruptSpillFile):
        decode_batch(Path("x.json"), data)


def test_load_of_missing_claim_is_corrupt(spool: Spool) -> None:
    """A claimed file that vanished loads as CorruptSpillFile, not OSError."""
    with pytest.raises(CorruptSpillFile):
        spool.load(spool.directory / "gone.json.claim.1.abc")


def test_corrupt_file_on_disk_then_quarantined(spool: Spool) -> None:
    """A truncated spill file fails to load and goes to quarantine; the others stay."""
    good = spool.write(BUCKET, EVENTS, sink=SINK, created=2.0)
    bad = spool.write(BUCKET, EVENTS, sink=SINK, created=1.0)
    bad.write_bytes(bad.read_bytes()[:20])
    claimed = spool.claim(bad)
    assert claimed is not None
    with pytest.raises(CorruptSpillFile) as info:
        spool.load(claimed)
    spool.quarantine(claimed, str(info.value))
    assert spool.files() == [good]
    assert (spool.directory / QUARANTINE / bad.name).exists()


def test_encode_rejects_nan() -> None:
    """encode_batch refuses NaN instead of writing a file no receiver would accept."""
    with pytest.raises(ValueError):
        encode_batch("i", 1.0, SINK, BUCKET, [("k", float("nan"), 1.0)], 0, "")


# ---- quota ------------------------------------------------------------------------------


def test_quota_evicts_oldest_first(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Past max_bytes the oldest go first; on_evict gets (files, events); a warning counts it."""
    evicted: list[tuple[int, int]] = []
    probe = Spool(tmp_path / "probe").write(BUCKET, EVENTS, sink=SINK, created=1000.0)
    size = probe.stat().st_size
    spool = Spool(
        tmp_path / "spool", max_bytes=4 * size - 10, on_evict=lambda f, e: evicted.append((f, e))
    )
    paths = [spool.write(BUCKET, EVENTS, sink=SINK, created=1000.0 + i) for i in range(3)]
    assert evicted == [] and spool.files() == paths
    with caplog.at_level(logging.WARNING, logger="isstreamer"):
        newest = spool.write(BUCKET, EVENTS[:3], sink=SINK, created=2000.0)
        assert evicted == []  # still fits: a smaller file
        last = spool.write(BUCKET, EVENTS, sink=SINK, created=3000.0)
    assert evicted == [(1, len(EVENTS))]
    assert spool.files() == [paths[1], paths[2], newest, last]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"{len(EVENTS)} events lost" in warnings[0]


def test_quota_evicts_several_and_counts_their_events(tmp_path: Path) -> None:
    """A large file evicts as many old files as needed and reports the sum of their events."""
    evicted: list[tuple[int, int]] = []
    big_events = [("k", "x" * 100, float(i)) for i in range(80)]
    probe = Spool(tmp_path / "probe").write(BUCKET, big_events, sink=SINK, created=100.0)
    big_size = probe.stat().st_size
    spool = Spool(tmp_path / "spool", max_bytes=10**9, on_evict=lambda f, e: evicted.append((f, e)))
    small = [spool.write(BUCKET, EVENTS[: i + 1], sink=SINK, created=10.0 + i) for i in range(3)]
    spool.max_bytes = big_size + small[2].stat().st_size  # room for the big one and the newest
    big = spool.write(BUCKET, big_events, sink=SINK, created=100.0)
    assert evicted == [(2, 1 + 2)]
    assert spool.files() == [small[2], big]


def test_quota_never_evicts_the_new_file_or_claims(tmp_path: Path) -> None:
    """A file larger than the whole quota is kept; files being sent are not evicted."""
    evicted: list[tuple[int, int]] = []
    spool = Spool(tmp_path / "spool", max_bytes=10, on_evict=lambda f, e: evicted.append((f, e)))
    first = spool.write(BUCKET, EVENTS, sink=SINK, created=1.0)  # over already: nothing to evict
    claimed = spool.claim(first)
    second = spool.write(BUCKET, EVENTS, sink=SINK, created=2.0)
    third = spool.write(BUCKET, EVENTS, sink=SINK, created=3.0)
    assert claimed is not None and claimed.exists()
    assert spool.files() == [third] and not second.exists()
    assert evicted == [(1, len(EVENTS))]


def test_quota_counts_files_already_on_disk(tmp_path: Path) -> None:
    """A new Spool over an existing directory counts the files already there toward the quota."""
    old = Spool(tmp_path / "spool")
    existing = [old.write(BUCKET, EVENTS, sink=SINK, created=1.0 + i) for i in range(3)]
    size = existing[0].stat().st_size
    evicted: list[tuple[int, int]] = []
    # (sizes differ by a byte or two with wall_minus_monotonic: room for 3 files, never for 4)
    spool = Spool(
        tmp_path / "spool", max_bytes=3 * size + 20, on_evict=lambda f, e: evicted.append((f, e))
    )
    spool.write(BUCKET, EVENTS, sink=SINK, created=4.0)  # about the size of the others
    assert evicted == [(1, len(EVENTS))] and not existing[0].exists() and existing[1].exists()


# ---- hostile directories and files ------------------------------------------------------


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs mounted for the test (tests run as root), unmounted after it."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mountpoint)],
            capture_output=True,
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def remount_read_only(mountpoint: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mountpoint)], check=True)


def test_symlink_planted_at_reason_file_is_not_followed(spool: Spool, tmp_path: Path) -> None:
    """A symlink at quarantine/<name>.reason (or at <name>) is replaced; its target is untouched."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    path = spool.write(BUCKET, EVENTS, sink=SINK)
    qdir = spool.directory / QUARANTINE
    qdir.mkdir(mode=0o700)
    os.symlink(victim, qdir / (path.name + ".reason"))
    os.symlink(victim, qdir / path.name)
    claimed = spool.claim(path)
    assert claimed is not None
    target = spool.quarantine(claimed, "400 bad")
    assert victim.read_text() == "precious\n"
    assert not target.is_symlink() and json.loads(target.read_bytes())["events"]
    reason = target.with_name(target.name + ".reason")
    assert not reason.is_symlink() and reason.read_text() == "400 bad\n"


def test_spill_dir_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    """A spill_dir symlinked to a 1777 directory is refused clearly; the target keeps its mode."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    link = tmp_path / "spool"
    os.symlink(shared, link)
    spool = Spool(link)
    assert spool.files() == [] and spool.usage() == (0, 0) and spool.reclaim_stale() == 0
    assert "symbolic link" in spool.error and str(link) in spool.error
    with pytest.raises(OSError, match="symbolic link"):
        spool.write(BUCKET, EVENTS, sink=SINK)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777 and list(shared.iterdir()) == []


def test_shared_sticky_dir_is_refused_not_changed(tmp_path: Path) -> None:
    """A spill_dir that is a sticky 1777 directory (like /tmp) is refused and keeps its mode."""
    shared = tmp_path / "tmp-like"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    spool = Spool(shared)
    with pytest.raises(OSError, match="shared"):
        spool.write(BUCKET, EVENTS, sink=SINK)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777 and spool.error


def test_open_spool_and_quarantine_tightened_on_a_listing_only_run(tmp_path: Path) -> None:
    """A 0777 spool and quarantine are made 0700 by the first listing, without any write."""
    directory = tmp_path / "spool"
    Spool(directory).quarantine_batch(BUCKET, EVENTS, sink=SINK, reason="bad")
    os.chmod(directory, 0o777)
    os.chmod(directory / QUARANTINE, 0o777)
    Spool(directory).files()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / QUARANTINE).stat().st_mode) == 0o700


@pytest.mark.timeout(30)
def test_fifo_named_like_a_spill_file_never_blocks(spool: Spool) -> None:
    """A FIFO named *.json is skipped, refused by claim() and quarantined; nothing blocks."""
    good = spool.write(BUCKET, EVENTS, sink=SINK)
    fifo = spool.directory / ("s" + "0" * 19 + "0-20230101T000000.000000-abc-n3.json")
    os.mkfifo(fifo)
    assert spool.files() == [good]
    assert spool.claim(fifo) is None
    assert stat.S_ISFIFO(os.lstat(spool.directory / QUARANTINE / fifo.name).st_mode)
    reason = spool.directory / QUARANTINE / (fifo.name + ".reason")
    assert "not a regular file" in reason.read_text()
    with pytest.raises(CorruptSpillFile):
        spool.load(spool.directory / QUARANTINE / fifo.name)
    os.mkfifo(fifo)
    spool.files()
    spool.reclaim_stale()  # the periodic tidy sets aside what files() skipped
    assert not os.path.lexists(fifo) and spool.files() == [good]


def test_symlink_named_like_a_spill_file_is_not_read(spool: Spool, tmp_path: Path) -> None:
    """A symlink named like a spill file is never read through: it is set aside, its target kept."""
    secret = tmp_path / "secret.json"
    secret.write_bytes(spool.write(BUCKET, EVENTS, sink=SINK).read_bytes())
    for path in spool.files():
        path.unlink()
    link = spool.directory / "s00000000000000000009-20230101T000000.000000-abc-n4.json"
    os.symlink(secret, link)
    assert spool.files() == [] and spool.claim(link) is None
    assert secret.exists() and (spool.directory / QUARANTINE / link.name).is_symlink()


def test_disk_full_leaves_no_temp_or_truncated_files(tiny_tmpfs: Path) -> None:
    """On a full disk write() raises OSError, removes its temp file, never keeps a truncated one."""
    spool = Spool(tiny_tmpfs / "spool")
    events = [("k", "x" * 1000, 1700000000.0 + i) for i in range(10)]
    written, failures = [], 0
    for _ in range(20):
        try:
            written.append(spool.write(BUCKET, events, sink=SINK))
        except OSError:
            failures += 1
    assert written and failures
    assert "No space left" in spool.error or "no space" in spool.error.lower()
    assert not [n for n in os.listdir(spool.directory) if n.endswith(".tmp")]
    for path in spool.files():
        claimed = spool.claim(path)
        assert claimed is not None and len(spool.load(claimed).events) == len(events)


def test_read_only_spool_never_raises_out_of_listing_or_claims(
    tiny_tmpfs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A read-only spool: listing, claiming, tidying never raise; Spool.error says why, once."""
    path = Spool(tiny_tmpfs / "spool").write(BUCKET, EVENTS, sink=SINK)
    remount_read_only(tiny_tmpfs)
    spool = Spool(tiny_tmpfs / "spool")
    with caplog.at_level(logging.ERROR, logger="isstreamer"):
        for _ in range(3):
            assert spool.files() == [path] and spool.usage()[0] == 1
            assert spool.claim(path) is None
            assert spool.reclaim_stale() == 0
            spool.release_own_claims()
        with pytest.raises(OSError):
            spool.write(BUCKET, EVENTS, sink=SINK)
    assert "Read-only" in spool.error
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == len(set(messages)), messages  # each problem logged once


def test_unreadable_spool_never_raises(tmp_path: Path) -> None:
    """A spool another user cannot read gives them empty listings and an error, no exception."""
    base = Path(tempfile.mkdtemp(prefix="isstreamer-perm-"))
    try:
        os.chmod(base, 0o755)
        Spool(base / "spool").write(BUCKET, EVENTS, sink=SINK)  # root's, 0700
        code = (
            "import os, sys; from pathlib import Path\n"
            "from isstreamer.spool import Spool\n"  # before: the interpreter may be root's only
            "os.setgid(65534); os.setuid(65534)\n"
            "s = Spool(Path(sys.argv[1]))\n"
            "assert s.files() == [] and s.usage() == (0, 0) and s.reclaim_stale() == 0\n"
            "assert s.claim(Path(sys.argv[1]) / 'x.json') is None\n"
            "print(s.error)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(base / "spool")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        shutil.rmtree(base)
    assert out.returncode == 0, out.stderr
    assert "Permission denied" in out.stdout


@pytest.mark.parametrize(
    "member",
    [
        '"created": NaN',
        '"created": 1e300',
        '"created": -5',
        '"created": "x"',
        '"created": true',
        '"attempts": -1',
        '"attempts": "3"',
        '"attempts": 1.5',
        '"bucket_key": 5',
        '"id": null',
        '"sink": []',
        '"last_error": {}',
        '"boot_id": 7',
        '"wall_minus_monotonic": "x"',
        '"wall_minus_monotonic": Infinity',
    ],
)
def test_impossible_metadata_is_corrupt(spool: Spool, member: str) -> None:
    """Impossible metadata makes a file CorruptSpillFile (so it is quarantined), never a crash."""
    doc = {
        "format": 1,
        "id": "x",
        "created": 1.0,
        "sink": "s",
        "bucket_key": "b",
        "attempts": 0,
        "last_error": "",
        "boot_id": "",
    }
    name, value = member.split(": ", 1)
    text = json.dumps(doc)[:-1] + f", {name}: {value}, " + '"events": [["k", 1, 1.0]]}'
    path = spool.directory / "s00000000000000000001-20230101T000000.000000-abc-n1.json"
    spool.ensure_dir()
    path.write_text(text)
    claimed = spool.claim(path)
    assert claimed is not None
    with pytest.raises(CorruptSpillFile):
        spool.load(claimed)
    with pytest.raises(CorruptSpillFile):
        decode_batch(path, text.encode())


def test_write_raises_only_oserror(spool: Spool) -> None:
    """write() of a batch that cannot be encoded raises OSError (a counted loss), leaves nothing."""
    with pytest.raises(OSError, match="encode"):
        spool.write(BUCKET, [("k", float("nan"), 1.0)], sink=SINK)
    with pytest.raises(OSError, match="encode"):
        spool.write(BUCKET, [("k", object(), 1.0)], sink=SINK)  # type: ignore[list-item]
    assert spool.files() == []


# ---- claims across processes, clocks and kills ------------------------------------------

HOLDER = """
import os, sys, time
from pathlib import Path
time.time = lambda: 1e9 + 7200.0 + time.monotonic()  # this process's wall clock is far off
from isstreamer.spool import Spool
spool = Spool(Path(sys.argv[1]))
claimed = spool.claim(spool.files()[0])
assert claimed is not None
child = 0
if len(sys.argv) > 2:  # leave a forked child that got copies of the fds, then go away
    ready, tell = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(tell, b"x")  # the fork handlers have run by now
        time.sleep(60)
        os._exit(0)
    os.read(ready, 1)
print(claimed.name, child, flush=True)
sys.stdin.readline()
"""


def start_holder(spool: Spool, *extra: str) -> tuple[subprocess.Popen, Path]:
    """A process (with a wall clock two hours ahead) that claims the first file and holds it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(spool.directory), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert line, "the holder process did not claim the file"
    proc.child_pid = int(line[1])  # type: ignore[attr-defined]
    return proc, spool.directory / line[0]


def test_live_claim_of_a_process_with_another_clock_is_never_taken(spool: Spool) -> None:
    """A live claim of a process 2 h ahead is never taken; after its kill -9 it is, at once."""
    path = spool.write(BUCKET, EVENTS, sink=SINK)
    proc, claimed = start_holder(spool)
    try:
        os.utime(claimed, (1, 1))  # whatever its file times say
        assert spool.reclaim_stale() == 0 and spool.files() == [] and claimed.exists()
        assert spool.claim(path) is None
    finally:
        proc.kill()
        proc.wait()
    assert spool.reclaim_stale() == 1
    assert spool.files() == [path] and spool.claim(path) is not None


def test_forked_child_does_not_keep_a_dead_parents_claim(spool: Spool) -> None:
    """A claim is taken over when its owner dies even if a forked child of it lives on."""
    path = spool.write(BUCKET, EVENTS, sink=SINK)
    proc, claimed = start_holder(spool, "fork")
    proc.kill()
    proc.wait()
    try:
        assert spool.reclaim_stale() == 1 and spool.files() == [path]
    finally:
        os.kill(proc.child_pid, signal.SIGKILL)  # type: ignore[attr-defined]


KILLED_BEFORE_RENAME = """
import os, signal, sys
from pathlib import Path
from isstreamer.sinks.base import Bucket
from isstreamer.spool import Spool
spool = Spool(Path(sys.argv[1]))
spool.ensure_dir()
os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)  # die between fsync and rename
spool.write(Bucket("b"), [("k", i, 1700000000.0 + i) for i in range(2500)], sink="s")
"""


def test_kill_between_write_and_rename_is_recovered(spool: Spool) -> None:
    """A temp file written in full by a process killed -9 before its rename is recovered."""
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_RENAME, str(spool.directory)], timeout=60
    )
    assert proc.returncode == -9
    [tmp] = [n for n in os.listdir(spool.directory) if n.endswith(".tmp")]
    fresh = Spool(spool.directory)
    [recovered] = fresh.files()
    assert tmp == f".{recovered.name}.tmp" and event_count(recovered) == 2500
    claimed = fresh.claim(recovered)
    assert claimed is not None and len(fresh.load(claimed).events) == 2500


def test_stale_temp_files_swept_at_start(spool: Spool) -> None:
    """At start: a partial temp file is quarantined, an empty one removed, a locked one kept."""
    full = spool.write(BUCKET, EVENTS, sink=SINK).read_bytes()
    for path in spool.files():
        path.unlink()
    partial = spool.directory / ".s00000000000000000005-20230101T000000.000000-abc-n4.json.tmp"
    partial.write_bytes(full[: len(full) // 2])
    empty = spool.directory / ".s00000000000000000006-20230101T000000.000000-abd-n4.json.tmp"
    empty.write_bytes(b"")
    busy = spool.directory / ".s00000000000000000007-20230101T000000.000000-abe-n4.json.tmp"
    busy.write_bytes(full)
    fd = os.open(busy, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert Spool(spool.directory).files() == []
        assert busy.exists() and not empty.exists() and not partial.exists()
        quarantined = spool.directory / QUARANTINE / partial.name[1:-4]
        assert quarantined.read_bytes() == full[: len(full) // 2]
        assert "incomplete write" in quarantined.with_name(quarantined.name + ".reason").read_text()
    finally:
        os.close(fd)


# ---- huge files -------------------------------------------------------------------------


def test_huge_file_is_split_and_loaded_in_parts(
    spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file over the limit is split into parts in its place in line; each event once, in order."""
    monkeypatch.setattr(spool_split, "LOAD_MAX_EVENTS", 300)
    monkeypatch.setattr(spool_split, "PART_BYTES", 1 << 20)
    events = [(f"k{i % 7}", i, 1700000000.0 + i) for i in range(1000)]
    big = spool.write(BUCKET, events, sink=SINK, attempts=2, last_error="503", batch_id="big1")
    later = spool.write(BUCKET, EVENTS, sink=SINK)
    claimed = spool.claim(big)
    assert claimed is not None
    batch = spool.load(claimed)
    assert len(batch.events) == 300 and batch.events == events[:300]
    assert batch.id == "big1" and batch.attempts == 2 and batch.last_error == "503"
    assert not claimed.exists() and ".claim." in batch.path.name
    rest = spool.files()
    assert rest[-1] == later and [event_count(p) for p in rest[:-1]] == [300, 300, 100]
    seen = list(batch.events)
    spool.delete(batch.path)
    for path in rest[:-1]:
        part = spool.claim(path)
        assert part is not None
        seen += spool.load(part).events
        spool.delete(part)
    assert seen == events and spool.files() == [later]


def test_split_parts_of_a_selected_file_stay_selected(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The parts a selected huge file is split into are selected too; its neighbour is not."""
    monkeypatch.setattr(spool_split, "LOAD_MAX_EVENTS", 10)
    directory = tmp_path / "selected"
    big = Spool(directory).write(BUCKET, [("k", i, 1700000000.0 + i) for i in range(35)], sink=SINK)
    other = Spool(directory).write(BUCKET, EVENTS, sink=SINK)
    chosen = Spool(directory, select=Selection({big.name}))
    assert chosen.files() == [big]
    claimed = chosen.claim(big)
    assert claimed is not None
    assert len(chosen.load(claimed).events) == 10
    assert [event_count(p) for p in chosen.files()] == [10, 10, 5]
    assert other not in chosen.files() and other in Spool(directory).files()


def test_huge_file_with_a_bad_event_is_quarantined_whole(
    spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad event late in a huge file leaves no parts: the load fails, the file is quarantined."""
    monkeypatch.setattr(spool_split, "LOAD_MAX_EVENTS", 100)
    events = [("k", i, 1700000000.0 + i) for i in range(500)]
    path = spool.write(BUCKET, events, sink=SINK)
    path.write_bytes(path.read_bytes().replace(b'["k",450,', b'["k",null,'))
    claimed = spool.claim(path)
    assert claimed is not None
    with pytest.raises(CorruptSpillFile):
        spool.load(claimed)
    assert spool.files() == [] and spool.usage()[0] == 1
    spool.quarantine(claimed, "bad")
    assert spool.usage() == (0, 0)


MEMORY = """
import json, resource, sys
from pathlib import Path
from isstreamer.spool import Spool
spool = Spool(Path(sys.argv[1]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
seen = 0
while True:
    files = spool.files()
    if not files:
        break
    claimed = spool.claim(files[0])
    seen += len(spool.load(claimed).events)
    spool.delete(claimed)
print(json.dumps({"events": seen,
                  "growth_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before}))
"""


@pytest.mark.slow
def test_replaying_a_huge_file_takes_bounded_memory(spool: Spool) -> None:
    """Draining a 300k-event (10 MB) spill file grows the process far less than a whole load."""
    spool.ensure_dir()
    path = spool.directory / "s00000000000000000001-20230101T000000.000000-abc-n300000.json"
    with open(path, "w") as fh:
        fh.write('{"format":1,"id":"x","created":1.0,"sink":"s","bucket_key":"b","events":[')
        fh.write(",".join(f'["key{i % 20}",{i * 0.5},{1700000000 + i}]' for i in range(300_000)))
        fh.write("]}")
    out = subprocess.run(
        [sys.executable, "-c", MEMORY, str(spool.directory)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["events"] == 300_000
    assert result["growth_kib"] < 40 * 1024  # loaded whole it takes over 100 MiB


# ---- selections -------------------------------------------------------------------------


def test_selection_follows_a_file_rewritten_on_release(tmp_path: Path) -> None:
    """A selected file given back with fewer events is listed under its new name; others never."""
    directory = tmp_path / "spool"
    chosen_path = Spool(directory).write(BUCKET, EVENTS, sink=SINK)
    neighbour = Spool(directory).write(BUCKET, EVENTS[:1], sink=SINK)
    chosen = Spool(directory, select=Selection({chosen_path.name}))
    claimed = chosen.claim(chosen_path)
    assert claimed is not None
    batch = chosen.load(claimed)
    chosen.release(batch, batch.events[2:], last_error="503")
    [rewritten] = chosen.files()
    assert rewritten != chosen_path and event_count(rewritten) == 2
    assert neighbour not in chosen.files()


def test_selection_sends_to_its_receiver(tmp_path: Path) -> None:
    """A selection with a receiver loads files spilled for another one as its own; without, not."""
    directory = tmp_path / "spool"
    path = Spool(directory).write(BUCKET, EVENTS, sink="https://groker.init.st")
    retarget = Spool(directory, select=Selection(sink=SINK))
    claimed = retarget.claim(path)
    assert claimed is not None
    assert retarget.load(claimed).sink == SINK
    assert Spool(directory).load(claimed).sink == "https://groker.init.st"


def test_selection_counts_selected_files_set_aside_unread(tmp_path: Path) -> None:
    """Quarantining an unreadable selected file counts its events; an unselected one is not."""
    directory = tmp_path / "spool"
    chosen_path = Spool(directory).write(BUCKET, EVENTS, sink=SINK)
    other = Spool(directory).write(BUCKET, EVENTS[:1], sink=SINK)
    select = Selection({chosen_path.name})
    spool = Spool(directory, select=select)
    claimed = spool.claim(chosen_path)
    assert claimed is not None
    spool.quarantine(claimed, "unreadable")
    spool.quarantine(other, "unreadable")
    assert select.set_aside == len(EVENTS)
    assert len(spool.quarantined()) == 2


def test_a_spool_directory_from_settings_may_start_with_a_tilde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spool("~/spool") is the spool in the home directory, as an ini file would write it."""
    monkeypatch.setenv("HOME", str(tmp_path))
    spool = Spool("~/spool")
    assert spool.directory == tmp_path / "spool"
    assert spool.write(BUCKET, EVENTS, sink=SINK).parent == tmp_path / "spool"
