"""The collector's SQLite schema, its migration from older databases, and the rollup rules.

Tables (docs/collector.md explains the choices):

- ``buckets``: one row per bucket key.
- ``series``: one row per (bucket, key), the per-key summary kept up to date in the ingest
  transaction (count, first and last epoch, latest value, which value types it has seen), so
  the key list, ``/metrics`` and the dashboard's time span never scan events.
- ``events``: every event; ``(series_id, epoch)`` makes any time range of a key a range scan.
- ``rollups``: per key, per ``ROLLUP_STEPS_S`` time bucket, min/max/sum/count and the last
  value of its numbers, so a week of 10-second data is read as 2,016 rows instead of 60,480.
"""

from __future__ import annotations

import logging
import sqlite3

log = logging.getLogger("isstreamer.collector")

SCHEMA_VERSION = 3  # PRAGMA user_version: 0 before the rollups, 2 with 60 s and 900 s ones
# `value` has no declared type on purpose: SQLite then keeps each value's own storage class
# (INTEGER, REAL or TEXT), so JSON types survive a round trip and numbers stay cheap to chart
# and aggregate. The one thing SQLite cannot tell apart is a bool from 0/1: `kind` records it.
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
CREATE TABLE IF NOT EXISTS rollups (
    series_id INTEGER NOT NULL,
    step INTEGER NOT NULL,
    t INTEGER NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    sum REAL NOT NULL,
    count INTEGER NOT NULL,
    last_epoch REAL NOT NULL,
    last_value NOT NULL,
    PRIMARY KEY (series_id, step, t)
) WITHOUT ROWID;
"""
# Columns added to `series` in version 2: first epoch, and a bit set of the value types seen.
# Any older version gets its rollups rebuilt at the levels of this one.
_SERIES_COLUMNS = (
    ("first_epoch", "REAL"),
    ("kinds", "INTEGER NOT NULL DEFAULT 0"),
)
KIND_PLAIN, KIND_BOOL = 0, 1
SEEN_NUMBER, SEEN_BOOL, SEEN_TEXT = 1, 2, 4  # bits of series.kinds
# Two levels: 5 minutes serves ranges from about a day to a week at chart resolution, an hour
# divides every coarser step the read side picks (see query.NICE_STEPS_S), so a year is 8,760
# rows per key. Shorter ranges are grouped from the events themselves (a few thousand rows).
# Measured: each rollup row an ingest batch writes costs about 3 µs, so finer levels would
# cost ingest more than they save the reads.
ROLLUP_STEPS_S = (300, 3600)
# Epochs are positive in practice, but CAST truncates toward zero; shifting by a multiple of
# every step makes it a floor for anything after the year -900.
_SHIFT = 90_000_000_000
NUMERIC = "kind = 0 AND typeof(value) IN ('integer', 'real')"
STATE = "(kind = 1 OR typeof(value) = 'text')"


def floor_sql(column: str, step: int) -> str:
    """SQL for the start of the ``step``-second bucket that holds ``column``."""
    return f"(CAST(({column} + {_SHIFT}) / {step} AS INTEGER) * {step} - {_SHIFT})"


def _rollup_sql(step: int) -> str:
    # For a rebuild from the events (rollup.py counts those of each ingest batch).
    # The `last` of a bucket comes from a second GROUP BY with max(epoch) as its only
    # aggregate: SQLite then takes the bare `value` from the row holding that maximum.
    t = floor_sql("epoch", step)
    return f"""
WITH new AS (SELECT series_id, epoch, value, {t} AS t FROM events WHERE {NUMERIC})
INSERT INTO rollups (series_id, step, t, min, max, sum, count, last_epoch, last_value)
SELECT g.series_id, {step}, g.t, g.lo, g.hi, g.total, g.n, l.e, l.v FROM
    (SELECT series_id, t, min(value) AS lo, max(value) AS hi, sum(value) AS total,
            count(*) AS n FROM new GROUP BY series_id, t) AS g
    JOIN (SELECT series_id, t, max(epoch) AS e, value AS v FROM new GROUP BY series_id, t) AS l
    ON l.series_id = g.series_id AND l.t = g.t
"""


def migrate(db: sqlite3.Connection) -> None:
    """Create the tables, or bring a database of an older version up to this one."""
    if db.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return
    db.executescript(SCHEMA)  # IF NOT EXISTS throughout: harmless when another process races
    db.execute("BEGIN IMMEDIATE")
    try:
        # Checked again under the write lock: another process may have migrated meanwhile.
        if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            have = {row[1] for row in db.execute("PRAGMA table_info(series)")}
            for name, decl in _SERIES_COLUMNS:
                if name not in have:
                    db.execute(f"ALTER TABLE series ADD COLUMN {name} {decl}")
            _backfill(db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _backfill(db: sqlite3.Connection) -> None:
    # A database written before version 2 (or a new, empty one): derive what ingest now
    # maintains, once.
    if db.execute("SELECT 1 FROM events LIMIT 1").fetchone():
        log.info("collector database: building rollups of the stored events (once)")
    db.execute(
        "UPDATE series SET"
        " first_epoch = (SELECT min(epoch) FROM events WHERE series_id = series.id),"
        f" kinds = (SELECT {SEEN_NUMBER} * max({NUMERIC}) + {SEEN_BOOL} * max(kind = 1)"
        f" + {SEEN_TEXT} * max(typeof(value) = 'text') FROM events"
        " WHERE series_id = series.id)"
    )
    db.execute("UPDATE series SET kinds = 0 WHERE kinds IS NULL")
    db.execute("DELETE FROM rollups")
    for step in ROLLUP_STEPS_S:
        db.execute(_rollup_sql(step))
