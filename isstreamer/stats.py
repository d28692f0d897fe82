"""Counters since construction, shared by the caller's thread and the worker.

Every event this Streamer logged ends in exactly one of: sent (delivered live), replayed
(delivered from one of its own spill files), on disk (in its own spill files now),
quarantined, dropped (counted and logged), or queued (in memory or on the wire), so that

    logged == sent + replayed + on_disk + quarantined + dropped + queued

Spill files other runs left, replayed by this one, are counted apart (``*_other``), so they
never break that sum.
"""

from __future__ import annotations

import threading
from typing import TypedDict

COUNTERS = (
    "logged",
    "invalid",
    "sent",
    "batches",
    "retried",
    "spilled",
    "replayed",
    "quarantined",
    "dropped",
    "replayed_other",
    "quarantined_other",
    "dropped_other",
    "restamped",
)
LOSSES = ("quarantined", "dropped")  # own events that will never be delivered


class StatsDict(TypedDict):
    """What ``Streamer.stats()`` returns: the counters, then the gauges of now."""

    logged: int
    invalid: int
    sent: int
    batches: int
    retried: int
    spilled: int
    replayed: int
    quarantined: int
    dropped: int
    replayed_other: int
    quarantined_other: int
    dropped_other: int
    restamped: int  # default-epoch events moved by a wall-clock step (clock.py)
    on_disk: int
    queued: int
    spool_files: int
    spool_bytes: int
    spool_error: str
    circuit_open: bool
    last_error: str


class Stats:
    """Thread-safe counters; incremented per batch, never per log() call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._own_files: dict[str, int] = {}  # batch id -> own events on disk
        self._names: dict[str, str] = {}  # spill file name -> batch id, for own files
        self.last_error = ""

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def error(self, message: str) -> None:
        self.last_error = message

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            out = dict(self._counts)
            out["on_disk"] = sum(self._own_files.values())
            return out

    def losses(self) -> int:
        """Own events quarantined or dropped so far."""
        with self._lock:
            return sum(self._counts[name] for name in LOSSES)

    # ---- the ledger of own spill files ----------------------------------------------------
    # Keyed by batch id, which a file keeps when it is rewritten with fewer events or split
    # into parts; the names seen are kept to notice files the quota evicted.

    def spilled(self, batch_id: str, name: str, events: int) -> None:
        """Own events written to a spill file of batch ``batch_id`` named ``name``."""
        with self._lock:
            self._counts["spilled"] += events
            self._own_files[batch_id] = self._own_files.get(batch_id, 0) + events
            self._names[name] = batch_id

    def owns(self, batch_id: str) -> bool:
        with self._lock:
            return batch_id in self._own_files

    def seen(self, batch_id: str, name: str) -> None:
        """A file of batch ``batch_id`` is named ``name`` now (after a rewrite or a split)."""
        with self._lock:
            if batch_id in self._own_files:
                self._names[name] = batch_id

    def left_file(self, batch_id: str, events: int, outcome: str) -> None:
        """``events`` of batch ``batch_id`` left the disk as ``outcome`` (a counter name).

        For a batch that is not ours the counter is the ``*_other`` one.
        """
        with self._lock:
            left = self._own_files.get(batch_id)
            if left is None:
                other = outcome + "_other"
                self._counts[other if other in self._counts else outcome] += events
                return
            self._counts[outcome] += events
            self._set(batch_id, left - events)

    def gone(self, name: str, events: int, outcome: str) -> int:
        """The file ``name`` left the disk unread (evicted, unreadable): returns own events."""
        with self._lock:
            batch_id = self._names.pop(name, None)
            left = self._own_files.get(batch_id, 0) if batch_id is not None else 0
            own = min(left, events)
            if batch_id is not None and own:
                self._counts[outcome] += own
                self._set(batch_id, left - own)
            return own

    def _set(self, batch_id: str, events: int) -> None:
        if events > 0:
            self._own_files[batch_id] = events
            return
        self._own_files.pop(batch_id, None)
        for name in [n for n, b in self._names.items() if b == batch_id]:
            del self._names[name]

    def own_names(self) -> list[str]:
        with self._lock:
            return list(self._names)

    def own_on_disk(self) -> int:
        with self._lock:
            return sum(self._own_files.values())
