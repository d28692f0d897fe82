"""Spill file names: the one place that knows how they are built and read.

A spill file is named ``s<seq>-<UTC time>-<id>-n<events>.json``. ``seq`` is a 20-digit
sequence shared by every process writing to the spool (a counter file under ``flock``), so a
sort by name is a sort by writing order whatever the wall clock did: a Pi without a clock
that steps back an hour at NTP sync still replays its files oldest first. The counter is on
disk, so the order also holds across reboots. The UTC time is for people only. The event
count lets evictions and listings count events without reading files.

Names of earlier versions, ``<UTC time>-<id>-n<events>.json``, stay readable; they sort
before every new name (digits sort before ``s``), which is their true age.

A claimed file is ``<name>.claim.<pid>.<token>``; the pid and token are for people and for
a process to find its own claims; who owns a claim is decided by a lock (see claims.py).
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

SEQ_FILE = ".seq"  # the counter; a leading dot keeps it out of every listing
_SEQ_DIGITS = 20  # fits any unsigned 64-bit count, so names keep sorting as text
_STAMP = r"\d{8}T\d{6}\.\d{6}"
_NAME = re.compile(
    rf"^(?P<order>(?:s(?P<seq>\d{{{_SEQ_DIGITS}}})-)?(?P<stamp>{_STAMP}))"
    r"-(?P<id>[0-9a-f]+)-n(?P<count>\d+)\.json$"
)
_CLAIM = re.compile(r"^(?P<name>.+\.json)\.claim\.(?P<pid>\d+)\.(?P<token>[0-9a-f]+)$")
_TMP = re.compile(r"^\.(?P<name>.+\.json)\.tmp$")
_NO_STAMP = "00000000T000000.000000"


class SpillName(NamedTuple):
    """The parts of a spill file name."""

    order: str  # what sorts it: "s<seq>-<stamp>" (or "<stamp>" for old names)
    seq: int | None  # None for names of earlier versions
    stamp: str
    id: str
    events: int


def parse_name(name: str) -> SpillName | None:
    """The parts of a spill file name (not a claim), or None when it is not one."""
    m = _NAME.match(name)
    if not m:
        return None
    seq = m.group("seq")
    return SpillName(
        m.group("order"),
        int(seq) if seq else None,
        m.group("stamp"),
        m.group("id"),
        int(m.group("count")),
    )


def is_spill_name(name: str) -> bool:
    return _NAME.match(name) is not None


def original_name(name: str) -> str:
    """The spill file name under a claim name (the name itself when it is not a claim)."""
    m = _CLAIM.match(name)
    return m.group("name") if m else name


def event_count(path: Path) -> int:
    """Events in a spill file, from its name (claimed or not; 0 when the name is not ours)."""
    parsed = parse_name(original_name(path.name))
    return parsed.events if parsed else 0


def superseded(listing: Iterable[str]) -> list[str]:
    """Spill files left behind by a rewrite that died half-way, to be deleted.

    A rewrite keeps a file's order and id and only ever removes events, so of two files
    sharing both, the one with fewer events is the newer; the others are stale copies.
    """
    fewest: dict[tuple[str, str], SpillName] = {}
    stale = []
    for name in sorted(listing):
        parsed = parse_name(name)
        if parsed is None:
            continue
        key = (parsed.order, parsed.id)
        kept = fewest.get(key)
        if kept is None:
            fewest[key] = parsed
        elif parsed.events < kept.events:
            stale.append(spill_name(kept.order, kept.id, kept.events))
            fewest[key] = parsed
        else:
            stale.append(name)
    return stale


def stamp(created: float) -> str:
    """The UTC time for a name, readable by people; a placeholder for impossible times."""
    try:
        moment = _dt.datetime.fromtimestamp(created, _dt.timezone.utc)
    except (OverflowError, OSError, ValueError, TypeError):
        return _NO_STAMP
    return moment.strftime("%Y%m%dT%H%M%S.%f")


def created_from_name(name: str) -> float | None:
    """The creation time a name carries (seconds since 1970), or None."""
    parsed = parse_name(original_name(name))
    if parsed is None or parsed.stamp == _NO_STAMP:
        return None
    moment = _dt.datetime.strptime(parsed.stamp, "%Y%m%dT%H%M%S.%f")
    return moment.replace(tzinfo=_dt.timezone.utc).timestamp()


def spill_name(order: str, batch_id: str, count: int) -> str:
    return f"{order}-{batch_id}-n{count}.json"


def order_for(seq: int, created: float) -> str:
    return f"s{seq:0{_SEQ_DIGITS}d}-{stamp(created)}"


def claim_name(name: str, pid: int, token: str) -> str:
    return f"{name}.claim.{pid}.{token}"


def parse_claim(name: str) -> tuple[str, int, str] | None:
    """(original name, pid, token) of a claim name, or None."""
    m = _CLAIM.match(name)
    return (m.group("name"), int(m.group("pid")), m.group("token")) if m else None


def tmp_name(final_name: str) -> str:
    return f".{final_name}.tmp"


def final_of_tmp(name: str) -> str | None:
    """The name a temp file was to be renamed to, or None when it is not our temp file."""
    m = _TMP.match(name)
    return m.group("name") if m else None


def max_seq(names: Iterable[str]) -> int:
    """The highest sequence among names (claimed or not), 0 when there is none."""
    best = 0
    for name in names:
        parsed = parse_name(original_name(name))
        if parsed is not None and parsed.seq is not None:
            best = max(best, parsed.seq)
    return best


def next_seq(directory: Path, floor: int = 0) -> int:
    """Take the next number from the spool's counter file (under flock: shared by processes).

    ``floor`` is the highest sequence seen in the directory: after a power cut the counter
    may lag behind files that were fsync'd, and a new file must still sort after them.
    """
    fd = os.open(
        directory / SEQ_FILE,
        os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
        0o600,
    )
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        text = os.pread(fd, 64, 0)
        try:
            current = int(text.decode("ascii").strip() or 0)
        except (UnicodeDecodeError, ValueError):
            current = 0  # a damaged counter: the files on disk still give the floor
        seq = max(current, floor) + 1
        data = f"{seq}\n".encode()
        if os.pwrite(fd, data, 0) != len(data):
            raise OSError(errno.ENOSPC, "short write to the spool's sequence file")
        os.ftruncate(fd, len(data))
        return seq
    finally:
        os.close(fd)  # closing drops the lock
