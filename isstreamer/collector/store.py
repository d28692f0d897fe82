"""The collector's SQLite store: buckets, one series per (bucket, key), and the events."""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from . import rollup
from .checkpoint import BACKSTOP_PAGES, Checkpointer
from .reads import Reads, find_bucket
from .schema import (
    KIND_BOOL,
    KIND_PLAIN,
    SEEN_BOOL,
    SEEN_NUMBER,
    SEEN_TEXT,
    migrate,
)
from .validate import Row

_NUMBER = frozenset({float, int})
_NUMBER_OR_BOOL = frozenset({float, int, bool})
PURGE_CHUNK = 5000  # rows deleted per transaction, so retention never stalls ingest for long

_UPDATE_SERIES = """
UPDATE series SET
    count = count + ?1,
    first_epoch = min(coalesce(first_epoch, ?7), ?7),
    kinds = kinds | ?6,
    last_kind = CASE WHEN last_epoch IS NULL OR ?2 >= last_epoch THEN ?3 ELSE last_kind END,
    last_value = CASE WHEN last_epoch IS NULL OR ?2 >= last_epoch THEN ?4 ELSE last_value END,
    last_epoch = CASE WHEN last_epoch IS NULL OR ?2 >= last_epoch THEN ?2 ELSE last_epoch END
WHERE id = ?5
"""


# Events go in as multi-row INSERTs of this many rows: executemany steps, resets and releases
# the GIL once per row, which measured 0.6-1 µs of the 2.3-2.6 µs an event's insert cost.
# 200 rows are 800 parameters, below the 999 that SQLite before 3.32 allows.
ROWS_PER_INSERT = 200
_COLUMNS = 4


@functools.lru_cache(maxsize=ROWS_PER_INSERT)
def _insert_sql(rows: int) -> str:
    return "INSERT INTO events (series_id, epoch, kind, value) VALUES " + ",".join(
        ["(?, ?, ?, ?)"] * rows
    )


def insert_events(db: sqlite3.Connection, values: list[Any]) -> None:
    """Insert the events whose columns ``values`` holds, four per event, in order."""
    step = ROWS_PER_INSERT * _COLUMNS
    for start in range(0, len(values), step):
        chunk = values[start : start + step]
        db.execute(_insert_sql(len(chunk) // _COLUMNS), chunk)


class Store(Reads):
    """Thread-safe access to one collector database: one writer connection, pooled readers."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # readings are private
        self._write_lock = threading.Lock()
        self._db = self._connect()
        self._db.execute("PRAGMA journal_mode=WAL")
        # Checkpoints are the Checkpointer's, beside ingest; the writer's only past the backstop.
        self._db.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        self._checkpointer = Checkpointer(self._connect)
        migrate(self._db)
        # Ids are stable once committed, so caching them saves two lookups per key per request.
        self._bucket_ids: dict[str, int] = {}
        self._series_ids: dict[tuple[int, str], int] = {}
        self._readers: list[sqlite3.Connection] = []
        self._closed = False

    def _connect(self, readonly: bool = False) -> sqlite3.Connection:
        # Autocommit mode (isolation_level=None): transactions are spelled out with BEGIN.
        db = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False, timeout=10
        )
        db.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL keeps it consistent
        if readonly:
            db.execute("PRAGMA query_only=1")
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            if self._closed:
                raise RuntimeError("store is closed")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                # Ids handed out inside the rolled-back transaction no longer exist.
                self._bucket_ids.clear()
                self._series_ids.clear()
                raise
            self._db.execute("COMMIT")
        self._checkpointer.wrote()

    def _bucket_id(
        self, db: sqlite3.Connection, bucket_key: str, name: str, now: float
    ) -> tuple[int, bool]:
        bucket_id = self._bucket_ids.get(bucket_key)
        if bucket_id is not None:
            return bucket_id, False
        cur = db.execute(
            "INSERT OR IGNORE INTO buckets (bucket_key, name, created) VALUES (?, ?, ?)",
            (bucket_key, name or bucket_key, now),
        )
        created = cur.rowcount == 1
        row = find_bucket(db, bucket_key)
        assert row is not None  # inserted just above, in this transaction
        bucket_id = row[0]
        self._bucket_ids[bucket_key] = bucket_id
        return bucket_id, created

    def create_bucket(self, bucket_key: str, name: str, now: float) -> bool:
        """Create the bucket (True) or rename it when a new name is given (False)."""
        with self._transaction() as db:
            bucket_id, created = self._bucket_id(db, bucket_key, name, now)
            if not created and name:
                db.execute(
                    "UPDATE buckets SET name = ? WHERE id = ? AND name != ?",
                    (name, bucket_id, name),
                )
        return created

    def ingest(self, bucket_key: str, rows: Sequence[Row], now: float) -> None:
        """Store ``rows`` in ``bucket_key`` (created if new) in one transaction."""
        with self._transaction() as db:
            bucket_id, _ = self._bucket_id(db, bucket_key, "", now)
            series_ids = self._series_ids
            # Grouped by key first: each series' figures then come from passes in C (max, min,
            # comprehensions), not from branches per event. Within a key the order stays.
            by_key: dict[str, list[Row]] = {}
            for row in rows:
                group = by_key.get(row[0])
                if group is None:
                    by_key[row[0]] = [row]
                else:
                    group.append(row)
            values: list[Any] = []  # the events' columns, four per event, in batch order per key
            updates = []
            fine = rollup.Fine()
            for key, group in by_key.items():
                series_id = series_ids.get((bucket_id, key))
                if series_id is None:
                    series_id = self._new_series(db, bucket_id, key)
                classes = {row[1].__class__ for row in group}
                values += [
                    column
                    for _, value, epoch in group
                    for column in (
                        series_id,
                        epoch,
                        KIND_BOOL if value.__class__ is bool else KIND_PLAIN,
                        value,
                    )
                ]
                epochs = [row[2] for row in group]
                newest = max(epochs)
                value = group[len(epochs) - 1 - epochs[::-1].index(newest)][1]  # later wins
                seen = (
                    (SEEN_NUMBER if float in classes or int in classes else 0)
                    | (SEEN_BOOL if bool in classes else 0)
                    | (SEEN_TEXT if classes - _NUMBER_OR_BOOL else 0)
                )
                kind = KIND_BOOL if value.__class__ is bool else KIND_PLAIN
                updates.append((len(group), newest, kind, value, series_id, seen, min(epochs)))
                if seen & SEEN_NUMBER:  # the rollups take each series' numbers at once
                    numbers = [row for row in group if row[1].__class__ in _NUMBER]
                    fine.add(series_id, [row[1] for row in numbers], [row[2] for row in numbers])
            insert_events(db, values)
            db.executemany(_UPDATE_SERIES, updates)
            db.executemany(rollup.UPSERT, fine.rows())

    def _new_series(self, db: sqlite3.Connection, bucket_id: int, key: str) -> int:
        db.execute("INSERT OR IGNORE INTO series (bucket_id, key) VALUES (?, ?)", (bucket_id, key))
        series_id: int = db.execute(
            "SELECT id FROM series WHERE bucket_id = ? AND key = ?", (bucket_id, key)
        ).fetchone()[0]
        self._series_ids[(bucket_id, key)] = series_id
        return series_id

    def purge(self, older_than: float, cancelled: Callable[[], bool] = lambda: False) -> int:
        """Delete events with epoch < ``older_than``; returns how many went."""
        with self._reader() as db:
            series = [r[0] for r in db.execute("SELECT id FROM series WHERE count > 0").fetchall()]
        total = 0
        for series_id in series:
            while not cancelled():
                with self._transaction() as db:
                    deleted = db.execute(
                        "DELETE FROM events WHERE id IN (SELECT id FROM events"
                        " WHERE series_id = ? AND epoch < ? ORDER BY epoch LIMIT ?)",
                        (series_id, older_than, PURGE_CHUNK),
                    ).rowcount
                    if deleted:
                        db.execute(
                            "UPDATE series SET count = count - ?1, first_epoch ="
                            " (SELECT min(epoch) FROM events WHERE series_id = ?2) WHERE id = ?2",
                            (deleted, series_id),
                        )
                total += deleted
                if deleted < PURGE_CHUNK:
                    break
            with self._transaction() as db:
                # A rollup bucket that still holds newer events stays, whole.
                db.execute(
                    "DELETE FROM rollups WHERE series_id = ? AND t + step <= ?",
                    (series_id, older_than),
                )
        return total

    def close(self) -> None:
        """Close every connection; callers must have stopped using the store."""
        self._checkpointer.stop()
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._db.execute("PRAGMA optimize")
            finally:
                self._db.close()
        while self._readers:
            self._readers.pop().close()
