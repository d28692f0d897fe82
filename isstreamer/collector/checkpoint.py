"""WAL checkpoints off the ingest path: a thread with a connection of its own copies the
write-ahead log into the database file while ingest goes on.

SQLite's automatic checkpoint runs inside the COMMIT that takes the log past
``wal_autocheckpoint`` pages, so one ingest request in twenty paid for copying the log and
fsyncing the database: measured, 0.3 µs per event on average, about 5% of a request. A
PASSIVE checkpoint from another connection blocks neither the writer nor the readers, copies
each page once however often the batches since the last one rewrote it, and runs in SQLite's
C code without the GIL, so a second core does it beside the ingest thread.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Callable

log = logging.getLogger("isstreamer.collector")

INTERVAL_S = 0.5  # at full ingest speed the log grows by about 15 MB in that time
# The writer's own automatic checkpoint stays on, this far out (40 MB of 4 KB pages), so the
# log stays bounded even if this thread cannot keep up or has stopped.
BACKSTOP_PAGES = 10_000
STOP_TIMEOUT_S = 5.0


class Checkpointer:
    """Checkpoints the database of ``connect()`` at most every ``interval_s`` while it is
    written; started by the first ``wrote()``, ended by ``stop()``."""

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], interval_s: float = INTERVAL_S
    ) -> None:
        self._connect = connect
        self.interval_s = interval_s
        self._dirty = threading.Event()  # set by a commit, cleared by the checkpoint after it
        self._stopping = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # SQLite's answer to the last checkpoint: (busy, frames in the log, frames copied).
        self.last_result: tuple[int, int, int] | None = None
        self.checkpointed = threading.Event()  # set after each checkpoint; cleared by callers

    def wrote(self) -> None:
        """A transaction was committed: checkpoint within ``interval_s``."""
        if self._thread is None:
            self._start()
        self._dirty.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None or self._stopping.is_set():
                return
            self._thread = threading.Thread(
                target=self._run, name="isstreamer-checkpoint", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        try:
            db = self._connect()
        except sqlite3.Error as exc:  # the writer's backstop checkpoints instead
            log.warning("collector database: no checkpoint connection (%s)", exc)
            return
        try:
            while True:
                self._dirty.wait()
                if self._stopping.is_set():
                    return
                self._dirty.clear()
                try:
                    # fetchall: the statement runs to its end and holds nothing afterwards.
                    (row,) = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.last_result = (row[0], row[1], row[2])
                    self.checkpointed.set()
                except sqlite3.Error as exc:  # busy or I/O trouble: the next round tries again
                    log.debug("collector database: checkpoint failed (%s)", exc)
                if self._stopping.wait(self.interval_s):
                    return
        finally:
            db.close()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """End the thread (a checkpoint under way finishes first); the last connection to
        close checkpoints what is left."""
        self._stopping.set()
        self._dirty.set()
        with self._start_lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
