"""WAL checkpoints beside ingest: the Checkpointer thread, and the store's use of it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from isstreamer.collector.checkpoint import BACKSTOP_PAGES, Checkpointer
from isstreamer.collector.store import Store

WAIT_S = 10.0  # generous: a checkpoint takes milliseconds, a loaded CI machine may pause


def rows(count: int, key: str = "t") -> list[tuple[str, float, float]]:
    return [(key, i * 0.5, 1_700_000_000.0 + i) for i in range(count)]


def test_a_commit_is_checkpointed_by_the_thread_not_the_writer(tmp_path: Path) -> None:
    """After an ingest the Checkpointer copies the whole log into the database file."""
    store = Store(tmp_path / "c.db")
    try:
        store.ingest("b", rows(500), 1_700_000_000.0)
        assert store._checkpointer.checkpointed.wait(WAIT_S)
        result = store._checkpointer.last_result
        assert result is not None
        busy, frames, copied = result
        assert busy == 0 and frames > 0 and copied == frames
    finally:
        store.close()


def test_the_writer_checkpoints_only_past_the_backstop(tmp_path: Path) -> None:
    """The ingest connection's automatic checkpoint is moved out to BACKSTOP_PAGES."""
    store = Store(tmp_path / "c.db")
    try:
        assert store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES
    finally:
        store.close()


def test_a_store_that_only_reads_starts_no_thread(tmp_path: Path) -> None:
    """The thread starts with the first commit, so read-only uses cost no thread."""
    store = Store(tmp_path / "c.db")
    try:
        assert store.buckets() == []
        assert store._checkpointer._thread is None
    finally:
        store.close()


def test_close_stops_the_thread_and_leaves_every_event_readable(tmp_path: Path) -> None:
    """stop() ends the thread; a new connection reads all events after close."""
    path = tmp_path / "c.db"
    store = Store(path)
    store.ingest("b", rows(300), 1_700_000_000.0)
    thread = store._checkpointer._thread
    store.close()
    assert thread is not None and not thread.is_alive()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 300


def test_interval_spaces_checkpoints_out(tmp_path: Path) -> None:
    """Commits during the interval after a checkpoint wait for the next one (no busy loop)."""
    path = tmp_path / "c.db"
    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
    calls: list[sqlite3.Connection] = []

    def connect() -> sqlite3.Connection:
        calls.append(sqlite3.connect(path, check_same_thread=False))
        return calls[-1]

    checkpointer = Checkpointer(connect, interval_s=3600.0)
    try:
        checkpointer.wrote()
        assert checkpointer.checkpointed.wait(WAIT_S)
        checkpointer.checkpointed.clear()
        checkpointer.wrote()  # within the hour: no second checkpoint yet
        assert not checkpointer.checkpointed.wait(0.2)
    finally:
        checkpointer.stop()
    assert len(calls) == 1  # one connection of its own, opened once
    assert checkpointer._thread is not None and not checkpointer._thread.is_alive()


def test_no_connection_means_no_thread_and_no_error(tmp_path: Path) -> None:
    """A checkpoint connection that cannot open leaves checkpoints to the writer's backstop."""

    def connect() -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    checkpointer = Checkpointer(connect)
    checkpointer.wrote()
    checkpointer.stop()
    assert checkpointer.last_result is None
    assert checkpointer._thread is not None and not checkpointer._thread.is_alive()
