"""The read side's queries on one key: its numbers in time buckets, its states as intervals.

Every answer covers the whole range asked for, in at most about ``points`` rows: raw points
when there are that few, otherwise one row per ``step`` seconds, read from the rollups when
the step is a multiple of a rollup step and from the events otherwise (short ranges only).
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from .schema import KIND_BOOL, NUMERIC, ROLLUP_STEPS_S, STATE, floor_sql

DEFAULT_POINTS, MAX_POINTS = 600, 10_000
NUMBER_COLUMNS = ["epoch", "min", "max", "mean", "last", "count"]
STATE_COLUMNS = ["epoch", "end", "value", "changes"]
# The steps downsampling picks from: each one from 300 s on is a multiple of 300, each one from
# 3600 s on a multiple of 3600, so time buckets line up with the rollups' and merge exactly.
NICE_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)
_DAY_S = 86400
_ESTIMATE_STEP_S = ROLLUP_STEPS_S[-1]

Rows = list[list[Any]]


def nice_step(span_s: float, points: int) -> int:
    """The smallest nice step (seconds) that cuts ``span_s`` into at most ``points`` buckets."""
    want = span_s / max(points, 1)
    for step in NICE_STEPS_S:
        if step >= want:
            return step
    if want <= 43200:
        return 43200
    return max(1, math.ceil(want / _DAY_S)) * _DAY_S


def numbers(
    db: sqlite3.Connection, series_id: int, since: float, until: float, points: int
) -> tuple[int | None, Rows]:
    """(step, rows) of a key's numbers in [since, until]; step None: the rows are raw points."""
    if _estimate(db, series_id, since, until) <= points:
        raw = db.execute(
            f"SELECT epoch, value FROM events WHERE series_id = ? AND epoch BETWEEN ? AND ?"
            f" AND {NUMERIC} ORDER BY epoch LIMIT ?",
            (series_id, since, until, points + 1),
        ).fetchall()
        if len(raw) <= points:
            return None, [[e, v, v, v, v, 1] for e, v in raw]
    step = nice_step(until - since, points)
    level = next((s for s in reversed(ROLLUP_STEPS_S) if step % s == 0), 0)
    if level:
        return step, _from_rollups(db, series_id, level, step, since, until)
    return step, _from_events(db, series_id, step, since, until)


def _estimate(db: sqlite3.Connection, series_id: int, since: float, until: float) -> int:
    # An upper bound from the coarse rollups (whole buckets at both edges), read in a few rows.
    row = db.execute(
        "SELECT coalesce(sum(count), 0) FROM rollups"
        " WHERE series_id = ? AND step = ? AND t > ? AND t <= ?",
        (series_id, _ESTIMATE_STEP_S, since - _ESTIMATE_STEP_S, until),
    ).fetchone()
    return int(row[0])


def _from_rollups(
    db: sqlite3.Connection, series_id: int, level: int, step: int, since: float, until: float
) -> Rows:
    out: Rows = []
    rows = db.execute(
        "SELECT t, min, max, sum, count, last_epoch, last_value FROM rollups"
        " WHERE series_id = ? AND step = ? AND t > ? AND t <= ? ORDER BY t",
        (series_id, level, since - level, until),
    )
    total = 0.0
    last_epoch = 0.0
    for t, low, high, part_sum, count, epoch, value in rows:
        start = t // step * step
        if out and out[-1][0] == start:
            row = out[-1]
            row[1] = min(row[1], low)
            row[2] = max(row[2], high)
            row[5] += count
            total += part_sum
            if epoch >= last_epoch:
                row[4], last_epoch = value, epoch
        else:
            if out:
                out[-1][3] = total / out[-1][5]
            out.append([start, low, high, 0.0, value, count])
            total, last_epoch = part_sum, epoch
    if out:
        out[-1][3] = total / out[-1][5]
    return out


def _from_events(
    db: sqlite3.Connection, series_id: int, step: int, since: float, until: float
) -> Rows:
    bucket = floor_sql("epoch", step)
    where = f"WHERE series_id = ? AND epoch BETWEEN ? AND ? AND {NUMERIC}"
    params = (series_id, since, until)
    stats = db.execute(
        f"SELECT {bucket} AS b, min(value), max(value), avg(value), count(*) FROM events"
        f" {where} GROUP BY b ORDER BY b",
        params,
    ).fetchall()
    # max(epoch) as the only aggregate: SQLite takes the bare `value` from that row.
    lasts = db.execute(
        f"SELECT {bucket} AS b, max(epoch), value FROM events {where} GROUP BY b ORDER BY b",
        params,
    ).fetchall()
    return [[b, lo, hi, mean, last[2], n] for (b, lo, hi, mean, n), last in zip(stats, lasts)]


def states(
    db: sqlite3.Connection,
    series_id: int,
    since: float,
    until: float,
    points: int,
    now: float,
) -> tuple[int | None, Rows]:
    """(step, intervals) of a key's strings and booleans in [since, until].

    An interval ``[epoch, end, value, changes]`` runs from one change to the next; the last
    one until ``until`` or ``now``, whichever is earlier. With more than ``points`` changes,
    those within one ``step`` merge into one interval that ends with the last of them.
    """
    before = db.execute(
        f"SELECT kind, value FROM events WHERE series_id = ? AND epoch < ? AND {STATE}"
        " ORDER BY epoch DESC LIMIT 1",
        (series_id, since),
    ).fetchone()
    changes = db.execute(
        "SELECT epoch, kind, value FROM (SELECT epoch, kind, value,"
        " lag(kind) OVER w AS pk, lag(value) OVER w AS pv, row_number() OVER w AS n"
        f" FROM events WHERE series_id = ? AND epoch BETWEEN ? AND ? AND {STATE}"
        " WINDOW w AS (ORDER BY epoch, id))"
        " WHERE n = 1 OR pk IS NOT kind OR pv IS NOT value",
        (series_id, since, until),
    ).fetchall()
    rows: Rows = []
    if before is not None and (not changes or changes[0][0] > since):
        # The state in force when the range starts; a first change to the same value is
        # no change at all.
        if changes and tuple(changes[0][1:]) == tuple(before):
            changes[0] = (since, *before)
        else:
            rows.append([since, since, _state(*before), 1])
    for epoch, kind, value in changes:
        if rows:
            rows[-1][1] = epoch
        rows.append([epoch, epoch, _state(kind, value), 1])
    if rows:
        rows[-1][1] = max(rows[-1][0], min(until, now))
    if len(rows) <= points:
        return None, rows
    step = nice_step(until - since, points)
    merged: Rows = []
    for row in rows:
        if merged and merged[-1][0] // step == row[0] // step:
            last = merged[-1]
            last[1], last[2], last[3] = row[1], row[2], last[3] + row[3]
        else:
            merged.append(row)
    return step, merged


def _state(kind: int, value: Any) -> Any:
    return bool(value) if kind == KIND_BOOL else value
