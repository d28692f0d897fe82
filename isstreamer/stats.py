"""Counters since construction, shared by the caller's thread and the worker.

Every event this Streamer logged ends in exactly one of: sent (delivered live), replayed
(delivered from one of its own spill files), on disk (in its own spill files now),
quarantined, dropped (counted and logged), or queued (in memory or on the wire), so that

    logged == sent + replayed + on_disk + quarantined + dropped + queued

Spill files other runs left, replayed by this one, are counted apart (``*_other``), so they
never break that sum. The ledger of own files maps a spill file's name to its events.
"""

from __future__ import annotations

import threading
from typing import Dict, Iterable

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
)
LOSSES = ("quarantined", "dropped")  # own events that will never be delivered


class Stats:
    """Thread-safe counters; incremented per batch, never per log() call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._own_files: Dict[str, int] = {}  # spill file name -> own events in it
        self.last_error = ""

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def error(self, message: str) -> None:
        self.last_error = message

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            out = dict(self._counts)
            out["on_disk"] = sum(self._own_files.values())
            return out

    def losses(self) -> int:
        """Own events quarantined or dropped so far."""
        with self._lock:
            return sum(self._counts[name] for name in LOSSES)

    # ---- the ledger of own spill files ----------------------------------------------------

    def spilled(self, name: str, events: int) -> None:
        """Own events written to the spill file ``name``."""
        with self._lock:
            self._counts["spilled"] += events
            self._own_files[name] = self._own_files.get(name, 0) + events

    def owns(self, name: str) -> bool:
        with self._lock:
            return name in self._own_files

    def left_file(self, name: str, events: int, outcome: str) -> None:
        """``events`` of the file ``name`` left the disk as ``outcome`` (a counter name).

        For a file that is not ours the counter is the ``*_other`` one.
        """
        with self._lock:
            left = self._own_files.get(name)
            if left is None:
                other = outcome + "_other"
                self._counts[other if other in self._counts else outcome] += events
                return
            self._counts[outcome] += events
            if left - events > 0:
                self._own_files[name] = left - events
            else:
                del self._own_files[name]

    def forget(self, name: str, outcome: str) -> int:
        """All own events left in file ``name`` are gone as ``outcome``; returns how many."""
        with self._lock:
            events = self._own_files.pop(name, 0)
            self._counts[outcome] += events
            return events

    def renamed(self, old: str, new: str) -> None:
        """A spill file was rewritten under a new name (fewer events after a partial replay)."""
        with self._lock:
            if old in self._own_files:
                self._own_files[new] = self._own_files.pop(old)

    def own_files(self) -> Iterable[str]:
        with self._lock:
            return list(self._own_files)

    def own_on_disk(self) -> int:
        with self._lock:
            return sum(self._own_files.values())
