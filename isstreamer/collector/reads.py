"""The store's read side: buckets, keys, events, series and the latest values, on pooled
read-only connections (``Store`` supplies them; schema.py documents the tables)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from . import query
from .schema import KIND_BOOL, SEEN_BOOL, SEEN_NUMBER, SEEN_TEXT

_TYPES = ((SEEN_NUMBER, "number"), (SEEN_TEXT, "string"), (SEEN_BOOL, "boolean"))


def decode(kind: int, value: Any) -> Any:
    """A stored value as it was sent: SQLite keeps a bool as 0/1 and ``kind`` says which."""
    return bool(value) if kind == KIND_BOOL else value


def find_bucket(db: sqlite3.Connection, bucket_key: str) -> tuple[int] | None:
    """The (id,) row of a bucket, or None."""
    row = db.execute("SELECT id FROM buckets WHERE bucket_key = ?", (bucket_key,)).fetchone()
    return None if row is None else (row[0],)


def _types(kinds: int) -> list[str]:
    return [name for bit, name in _TYPES if kinds & bit]


class Reads:
    """Read methods of ``Store``; the pool of read-only connections lives here."""

    _readers: list[sqlite3.Connection]

    def _connect(self, readonly: bool = False) -> sqlite3.Connection:
        raise NotImplementedError

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

    def bucket(self, bucket_key: str) -> dict[str, Any] | None:
        """One bucket: name, events, keys, first and last epoch; None when there is none."""
        with self._reader() as db:
            row = db.execute(
                "SELECT b.name, COALESCE(SUM(s.count), 0), COUNT(s.id), MIN(s.first_epoch),"
                " MAX(s.last_epoch) FROM buckets b"
                " LEFT JOIN series s ON s.bucket_id = b.id AND s.count > 0"
                " WHERE b.bucket_key = ? GROUP BY b.id",
                (bucket_key,),
            ).fetchone()
        if row is None:
            return None
        name, events, keys, first, last = row
        return {
            "bucketKey": bucket_key,
            "bucketName": name,
            "events": events,
            "keys": keys,
            "firstEpoch": first,
            "lastEpoch": last,
        }

    def keys(self, bucket_key: str) -> list[dict[str, Any]] | None:
        """The keys of a bucket with count, span, types and latest value; None: no bucket."""
        with self._reader() as db:
            bucket = find_bucket(db, bucket_key)
            if bucket is None:
                return None
            rows = db.execute(
                "SELECT key, count, last_kind, last_value, first_epoch, last_epoch, kinds"
                " FROM series WHERE bucket_id = ? AND count > 0 ORDER BY key",
                bucket,
            ).fetchall()
        return [
            {
                "key": k,
                "count": c,
                "lastValue": decode(kind, v),
                "firstEpoch": first,
                "lastEpoch": last,
                "types": _types(kinds),
            }
            for k, c, kind, v, first, last, kinds in rows
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
            bucket = find_bucket(db, bucket_key)
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
                return [{"key": key, "value": decode(k, v), "epoch": e} for e, k, v in rows]
            rows = db.execute(
                "SELECT s.key, e.epoch, e.kind, e.value"
                " FROM series s JOIN events e ON e.series_id = s.id"
                " WHERE s.bucket_id = ? AND e.epoch BETWEEN ? AND ?"
                " ORDER BY e.epoch DESC, e.id DESC LIMIT ?",
                (bucket[0], low, high, limit),
            ).fetchall()
        rows.reverse()
        return [{"key": s, "value": decode(k, v), "epoch": e} for s, e, k, v in rows]

    def series(
        self,
        bucket_key: str,
        keys: Iterable[str] | None,
        since: float | None,
        until: float | None,
        points: int,
        now: float,
    ) -> list[dict[str, Any]] | None:
        """The series of ``keys`` (every key when None) over [since, until], downsampled to
        about ``points`` rows each: a "number" series for keys with numbers, a "state" series
        for keys with strings or booleans (a key with both has both). None: no such bucket.

        A missing ``since`` is the first event of the keys asked for, a missing ``until`` the
        later of now and their last event, so the whole range of the data is covered."""
        with self._reader() as db:
            bucket = find_bucket(db, bucket_key)
            if bucket is None:
                return None
            rows = db.execute(
                "SELECT id, key, kinds, first_epoch, last_epoch FROM series"
                " WHERE bucket_id = ? AND count > 0 ORDER BY key",
                bucket,
            ).fetchall()
            if keys is not None:
                wanted = set(keys)
                rows = [row for row in rows if row[1] in wanted]
            if not rows:
                return []
            low = min(r[3] for r in rows) if since is None else since
            high = max(now, max(r[4] for r in rows)) if until is None else until
            out = []
            for series_id, key, kinds, _, _ in rows:
                head = {"key": key, "since": low, "until": high}
                if kinds & SEEN_NUMBER:
                    step, data = query.numbers(db, series_id, low, high, points)
                    out.append(
                        dict(
                            head, type="number", step=step, columns=query.NUMBER_COLUMNS, rows=data
                        )
                    )
                if kinds & (SEEN_BOOL | SEEN_TEXT):
                    step, data = query.states(db, series_id, low, high, points, now)
                    out.append(
                        dict(head, type="state", step=step, columns=query.STATE_COLUMNS, rows=data)
                    )
        return out

    def latest(self) -> list[tuple[str, str, Any, float]]:
        """(bucket key, key, value, epoch) of every key whose latest value is a number or a
        bool (as 0/1), ordered by bucket and key: what ``/metrics`` exposes."""
        with self._reader() as db:
            rows = db.execute(
                "SELECT b.bucket_key, s.key, s.last_kind, s.last_value, s.last_epoch"
                " FROM series s JOIN buckets b ON b.id = s.bucket_id"
                " WHERE s.count > 0 AND typeof(s.last_value) IN ('integer', 'real')"
                " ORDER BY b.bucket_key, s.key"
            ).fetchall()
        return [(b, k, int(v) if kind == KIND_BOOL else v, e) for b, k, kind, v, e in rows]
