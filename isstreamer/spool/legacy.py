"""Reading the files ISStreamer and offline mode leave behind, for a replay.

* ``err_missed_events.txt``: ISStreamer appended one JSON array of ``{key, value, epoch}`` per
  batch it failed to send (and a ``{bucketKey, bucketName}`` object when creating the bucket
  failed, which is not an event).
* offline CSV: ``epoch,key,value`` rows, with or without that header. Offline mode writes
  booleans as ``true``/``false``; numbers are read back as int or float, everything else
  stays a string (so ISStreamer's ``True``/``False`` come back as strings).

Unreadable lines are skipped and reported in the log with their line number.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

from ..events import make_event
from ..model import Event
from ..text import parse_time as parse_epoch
from ..text import parse_value

log = logging.getLogger("isstreamer")

MAX_REPORTED = 10  # bad lines reported one by one per file; the rest are only counted


def sniff(path: Path) -> str:
    """ "spill" for our own spill files, "missed" for err_missed_events.txt, else "csv"."""
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith(b"{") and b'"format"' in head and b'"events"' in head:
        return "spill"
    if head.startswith((b"[", b"{")):
        return "missed"
    return "csv"


class _Reader:
    """Collects events from one file and reports what it had to skip."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[Event] = []
        self.skipped = 0
        self.mtime = path.stat().st_mtime

    def add(self, lineno: int, key: Any, value: Any, epoch: Any) -> None:
        try:
            self.events.append(make_event(key, value, epoch))
        except (ValueError, TypeError) as exc:  # InvalidEvent, InvalidEventType
            self.bad(lineno, str(exc))

    def bad(self, lineno: int, reason: str, count: int = 1) -> None:
        self.skipped += count
        if self.skipped <= MAX_REPORTED:
            log.warning("%s line %d: %s; skipped", self.path, lineno, reason)

    def result(self) -> tuple[list[Event], int]:
        if self.skipped > MAX_REPORTED:
            log.warning("%s: %d unreadable events skipped in all", self.path, self.skipped)
        return self.events, self.skipped


def read_missed_events(path: Path) -> tuple[list[Event], int]:
    """(events, skipped) from an ISStreamer err_missed_events.txt."""
    reader = _Reader(path)
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            text = line.strip()
            if not text:
                continue
            try:
                doc = json.loads(text)
            except ValueError as exc:
                reader.bad(lineno, f"not JSON ({exc})")
                continue
            if isinstance(doc, dict) and "bucketKey" in doc and "key" not in doc:
                continue  # a bucket ISStreamer could not create; the events carry no bucket
            for item in doc if isinstance(doc, list) else [doc]:
                if not isinstance(item, dict) or "key" not in item or "value" not in item:
                    reader.bad(lineno, "an event needs a key and a value")
                    continue
                reader.add(lineno, item["key"], item["value"], _event_time(item, reader.mtime))
    return reader.result()


def _event_time(item: dict, fallback: float) -> Any:
    if item.get("epoch") is not None:
        return item["epoch"]
    if isinstance(item.get("iso8601"), str):
        try:
            return parse_epoch(item["iso8601"])
        except ValueError:
            pass
    return fallback  # no time recorded: the file's last change is the closest we know


def read_offline_csv(path: Path) -> tuple[list[Event], int]:
    """(events, skipped) from an offline-mode CSV, with or without its header."""
    reader = _Reader(path)
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        for lineno, row in enumerate(csv.reader(fh), 1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if lineno == 1 and [c.strip().lower() for c in row] == ["epoch", "key", "value"]:
                continue
            if len(row) != 3:
                reader.bad(lineno, f"expected 3 fields (epoch,key,value), found {len(row)}")
                continue
            try:
                epoch = parse_epoch(row[0])
            except ValueError as exc:
                reader.bad(lineno, str(exc))
                continue
            reader.add(lineno, row[1], parse_value(row[2]), epoch)
    return reader.result()


def read_legacy(path: Path, kind: str) -> tuple[list[Event], int]:
    """(events, skipped) from a legacy file of the given kind (see sniff())."""
    if kind == "missed":
        return read_missed_events(path)
    if kind == "csv":
        return read_offline_csv(path)
    raise ValueError(f"unknown legacy file kind {kind!r}")
