"""Counters since construction, shared by the caller's thread and the worker."""
from __future__ import annotations

import threading
from typing import Dict

COUNTERS = ("logged", "invalid", "sent", "batches", "retried", "spilled", "replayed",
            "quarantined", "dropped")


class Stats:
    """Thread-safe counters; incremented per batch, never per log() call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.last_error = ""

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def error(self, message: str) -> None:
        self.last_error = message

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._counts)
