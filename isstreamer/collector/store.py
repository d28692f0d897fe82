"""The collector's SQLite store: buckets, one series per (bucket, key), and the events."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from .validate import Row

# `value` has no declared type on purpose: SQLite then keeps each value's own storage class
# (INTEGER, REAL or TEXT), so JSON types survive a round trip and numbers stay cheap to chart
# and aggregate. The one thing SQLite cannot tell apart is a bool from 0/1: `kind` records it.
# The series table is the per-key summary, updated in the ingest transaction, so "keys of a
# bucket" never scans events; (series_id, epoch) makes "last N points of a key" a range scan.
SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    id INTEGER PRIMARY KEY,
    bucket_key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    bucket_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    count INTEGER NOT NULL DEFAULT 0,
    last_epoch REAL,
    last_kind INTEGER,
    last_value,
    UNIQUE (bucket_id, key)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    series_id INTEGER NOT NULL,
    epoch REAL NOT NULL,
    kind INTEGER NOT NULL,
    value
);
CREATE INDEX IF NOT EXISTS events_series_epoch ON events (series_id, epoch);
"""
KIND_PLAIN, KIND_BOOL = 0, 1
PURGE_CHUNK = 5000  # rows deleted per transaction, so retention never stalls ingest for long

_UPDATE_SERIES = """
UPDATE series SET
    count = count + ?1,
    last_kind = CASE WHEN last_epoch IS NULL OR ?2 >= last_epoch THEN ?3 ELSE last_kind END,
    last_value = CASE WHEN last_epoch IS NULL OR ?2 >= last_epoch THEN ?4 ELSE last_value END,
    last_epoch = CASE WHEN last_epoch IS NULL OR ?2 >= last_epoch THEN ?2 ELSE last_epoch END
WHERE id = ?5
"""


def _decode(kind: int, value: Any) -> Any:
    return bool(value) if kind == KIND_BOOL else value


class Store:
    """Thread-safe access to one collector database: one writer connection, pooled readers."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # readings are private
        self._write_lock = threading.Lock()
        self._db = self._connect()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
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
    def _reader(self) -> Iterator[sqlite3.Connection]:
        # list.pop/append are atomic, which is all the locking a pool of idle connections needs.
        try:
            db = self._readers.pop()
        except IndexError:
            db = self._connect(readonly=True)
        try:
            yield db
        finally:
            self._readers.append(db)

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
        row = _find_bucket(db, bucket_key)
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
            params = []
            latest: dict[str, list[Any]] = {}  # key -> [count, epoch, kind, value, series id]
            for key, value, epoch in rows:
                kind = KIND_BOOL if value.__class__ is bool else KIND_PLAIN
                last = latest.get(key)
                if last is None:
                    series_id = series_ids.get((bucket_id, key))
                    if series_id is None:
                        series_id = self._new_series(db, bucket_id, key)
                    latest[key] = [1, epoch, kind, value, series_id]
                else:
                    series_id = last[4]
                    last[0] += 1
                    if epoch >= last[1]:
                        last[1:4] = epoch, kind, value
                params.append((series_id, epoch, kind, value))
            db.executemany(
                "INSERT INTO events (series_id, epoch, kind, value) VALUES (?, ?, ?, ?)", params
            )
            db.executemany(_UPDATE_SERIES, [tuple(last) for last in latest.values()])

    def _new_series(self, db: sqlite3.Connection, bucket_id: int, key: str) -> int:
        db.execute("INSERT OR IGNORE INTO series (bucket_id, key) VALUES (?, ?)", (bucket_id, key))
        series_id: int = db.execute(
            "SELECT id FROM series WHERE bucket_id = ? AND key = ?", (bucket_id, key)
        ).fetchone()[0]
        self._series_ids[(bucket_id, key)] = series_id
        return series_id

    def buckets(self) -> list[dict[str, Any]]:
        """Every bucket with its event count and newest epoch, most recently active first."""
        with self._reader() as db:
            rows = db.execute(
                "SELECT b.bucket_key, b.name, COALESCE(SUM(s.count), 0), MAX(s.last_epoch)"
                " FROM buckets b LEFT JOIN series s ON s.bucket_id = b.id AND s.count > 0"
                " GROUP BY b.id"
                " ORDER BY MAX(s.last_epoch) IS NULL, MAX(s.last_epoch) DESC, b.bucket_key"
            ).fetchall()
        return [
            {"bucketKey": k, "bucketName": n, "events": c, "lastEpoch": e} for k, n, c, e in rows
        ]

    def keys(self, bucket_key: str) -> list[dict[str, Any]] | None:
        """The keys of a bucket with count and latest value, or None for an unknown bucket."""
        with self._reader() as db:
            bucket = _find_bucket(db, bucket_key)
            if bucket is None:
                return None
            rows = db.execute(
                "SELECT key, count, last_kind, last_value, last_epoch FROM series"
                " WHERE bucket_id = ? AND count > 0 ORDER BY key",
                bucket,
            ).fetchall()
        return [
            {"key": k, "count": c, "lastValue": _decode(kind, v), "lastEpoch": e}
            for k, c, kind, v, e in rows
        ]

    def events(
        self,
        bucket_key: str,
        key: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]] | None:
        """The newest ``limit`` events in [since, until], oldest first; None: unknown bucket."""
        low = -1e300 if since is None else since
        high = 1e300 if until is None else until
        with self._reader() as db:
            bucket = _find_bucket(db, bucket_key)
            if bucket is None:
                return None
            if key is not None:
                # Walks the (series_id, epoch) index backwards: cost follows limit, not table size.
                rows = db.execute(
                    "SELECT epoch, kind, value FROM events WHERE series_id ="
                    " (SELECT id FROM series WHERE bucket_id = ? AND key = ?)"
                    " AND epoch BETWEEN ? AND ? ORDER BY epoch DESC, id DESC LIMIT ?",
                    (bucket[0], key, low, high, limit),
                ).fetchall()
                rows.reverse()
                return [{"key": key, "value": _decode(k, v), "epoch": e} for e, k, v in rows]
            rows = db.execute(
                "SELECT s.key, e.epoch, e.kind, e.value"
                " FROM series s JOIN events e ON e.series_id = s.id"
                " WHERE s.bucket_id = ? AND e.epoch BETWEEN ? AND ?"
                " ORDER BY e.epoch DESC, e.id DESC LIMIT ?",
                (bucket[0], low, high, limit),
            ).fetchall()
        rows.reverse()
        return [{"key": s, "value": _decode(k, v), "epoch": e} for s, e, k, v in rows]

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
                            "UPDATE series SET count = count - ? WHERE id = ?", (deleted, series_id)
                        )
                total += deleted
                if deleted < PURGE_CHUNK:
                    break
        return total

    def close(self) -> None:
        """Close every connection; callers must have stopped using the store."""
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


def _find_bucket(db: sqlite3.Connection, bucket_key: str) -> tuple[int] | None:
    """The (id,) row of a bucket, or None."""
    row = db.execute("SELECT id FROM buckets WHERE bucket_key = ?", (bucket_key,)).fetchone()
    return None if row is None else (row[0],)
