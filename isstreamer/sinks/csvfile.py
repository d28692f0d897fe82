"""Offline mode: append ``epoch,key,value`` rows to a CSV file instead of sending."""

from __future__ import annotations

import csv
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from ..model import SENT, Bucket, Event, Outcome, SendResult

HEADER = ("epoch", "key", "value")


def offline_path(offline_file: str) -> Path:
    """ISStreamer appended ".csv" to offline_file; keep that, without doubling it."""
    path = Path(os.path.expanduser(offline_file))
    return path if path.suffix.lower() == ".csv" else path.with_name(path.name + ".csv")


class CsvFileSink:
    """Appends rows and never truncates: a restart must not wipe the previous run's data."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.address = f"file://{self.path.resolve()}"
        self._lock = threading.Lock()

    def send(self, bucket: Bucket, events: Sequence[Event]) -> SendResult:
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                new = not self.path.exists() or self.path.stat().st_size == 0
                with open(self.path, "a", newline="", encoding="utf-8") as fh:
                    writer = csv.writer(fh)
                    if new:
                        writer.writerow(HEADER)
                    writer.writerows(
                        (repr(e) if isinstance(e, float) else e, k, _cell(v)) for k, v, e in events
                    )
        except OSError as exc:
            return SendResult(
                Outcome.RETRY, message=f"cannot write {self.path}: {exc.strerror or exc}"
            )
        return SENT

    def close(self) -> None:
        pass


def _cell(value: object) -> object:
    # Booleans as true/false so a replay of the CSV can tell them from the strings "True"/"False".
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value
