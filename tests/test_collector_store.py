"""The store's write side: events in multi-row INSERTs, in order, with their kinds."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from isstreamer.collector.store import ROWS_PER_INSERT, Store

NOW = 1_700_000_000.0


def stored(path: Path) -> list[tuple[str, float, int, Any]]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT s.key, e.epoch, e.kind, e.value FROM events e"
            " JOIN series s ON s.id = e.series_id ORDER BY e.id"
        ).fetchall()


@pytest.mark.parametrize(
    "count", [1, ROWS_PER_INSERT - 1, ROWS_PER_INSERT, 2 * ROWS_PER_INSERT + 7]
)
def test_every_event_is_stored_once_in_batch_order(tmp_path: Path, count: int) -> None:
    """Batches below, at and across the rows of one INSERT store each event once, in order."""
    store = Store(tmp_path / "s.db")
    try:
        store.ingest("b", [("t", i * 0.5, NOW + i) for i in range(count)], NOW)
    finally:
        store.close()
    assert stored(tmp_path / "s.db") == [("t", NOW + i, 0, i * 0.5) for i in range(count)]


def test_a_mixed_batch_keeps_types_kinds_and_per_key_order(tmp_path: Path) -> None:
    """Numbers, strings and booleans of several keys keep their types; bools get kind 1."""
    rows: list[tuple[str, Any, float]] = []
    for i in range(ROWS_PER_INSERT + 50):
        rows.append(("door", i % 2 == 0, NOW + i))
        rows.append(("temp", 20 + i, NOW + i))
        rows.append(("state", f"s{i}", NOW + i))
    store = Store(tmp_path / "s.db")
    try:
        store.ingest("b", rows, NOW)
        keys = {k["key"]: k for k in store.keys("b") or []}
    finally:
        store.close()
    events = stored(tmp_path / "s.db")
    assert len(events) == len(rows)
    for key in ("door", "temp", "state"):
        # Grouped by key in the table, each key's events in the order they came.
        assert [e[1:] for e in events if e[0] == key] == [
            (epoch, int(isinstance(value, bool)), value)
            for name, value, epoch in rows
            if name == key
        ]
    assert (
        keys["door"]["lastValue"] is False
        and keys["temp"]["lastValue"] == 20 + ROWS_PER_INSERT + 49
    )
