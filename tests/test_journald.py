"""isstreamer.journald: priority prefixes only when stderr is the stream $JOURNAL_STREAM names."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from isstreamer import journald


def stream_id(path: Path) -> str:
    st = path.stat()
    return f"{st.st_dev}:{st.st_ino}"


def record(level: int, message: str = "pump 3 stalled") -> logging.LogRecord:
    return logging.LogRecord("isstreamer", level, __file__, 1, message, None, None)


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (logging.CRITICAL, 3),
        (logging.ERROR, 3),
        (logging.WARNING, 4),
        (logging.INFO, 6),
        (logging.DEBUG, 7),
        (5, 7),
    ],
)
def test_priority_maps_logging_levels_to_syslog(level: int, expected: int) -> None:
    """Each logging level gets the syslog priority journald files it under."""
    assert journald.priority(level) == expected


def test_stream_named_by_journal_stream_is_the_journal(tmp_path: Path) -> None:
    """A stream whose device:inode is $JOURNAL_STREAM counts as the journal; another does not."""
    named, other = tmp_path / "named", tmp_path / "other"
    named.write_text("")
    other.write_text("")
    env = {"JOURNAL_STREAM": stream_id(named)}
    with open(named, "w") as fh, open(other, "w") as fh2:
        assert journald.is_journal(fh, env)
        assert not journald.is_journal(fh2, env)
        assert not journald.is_journal(fh, {})


@pytest.mark.parametrize("value", ["", "12", "a:b", ":", "1:2:3"])
def test_malformed_journal_stream_is_not_the_journal(tmp_path: Path, value: str) -> None:
    """A missing or malformed $JOURNAL_STREAM never counts as the journal."""
    path = tmp_path / "err"
    path.write_text("")
    with open(path, "w") as fh:
        assert not journald.is_journal(fh, {"JOURNAL_STREAM": value})


def test_stream_without_a_descriptor_is_not_the_journal() -> None:
    """An in-memory stream (no fileno) is not the journal, and asking does not raise."""
    import io

    assert not journald.is_journal(io.StringIO(), {"JOURNAL_STREAM": "1:2"})


def test_priority_formatter_prefixes_every_line() -> None:
    """Each line of a record, a traceback's too, starts with the record's priority."""
    formatter = journald.PriorityFormatter("%(levelname)s: %(message)s")
    assert formatter.format(record(logging.WARNING)) == "<4>WARNING: pump 3 stalled"
    try:
        raise ValueError("boom")
    except ValueError:
        failed = record(logging.ERROR, "send failed")
        failed.exc_info = sys.exc_info()
    lines = formatter.format(failed).split("\n")
    assert len(lines) > 2
    assert all(line.startswith("<3>") for line in lines)
    assert lines[-1] == "<3>ValueError: boom"


def test_formatter_for_chooses_by_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """formatter_for gives the prefixing formatter on the journal stream, a plain one elsewhere."""
    path = tmp_path / "err"
    path.write_text("")
    with open(path, "w") as fh:
        monkeypatch.setenv("JOURNAL_STREAM", stream_id(path))
        on_journal = journald.formatter_for(fh, "%(message)s")
        monkeypatch.delenv("JOURNAL_STREAM")
        elsewhere = journald.formatter_for(fh, "%(message)s")
    assert on_journal.format(record(logging.INFO)) == "<6>pump 3 stalled"
    assert elsewhere.format(record(logging.INFO)) == "pump 3 stalled"


def test_a_child_logging_to_its_journal_stream_writes_prefixed_lines(tmp_path: Path) -> None:
    """In a real process whose stderr is the named stream, log lines carry their priorities."""
    err = tmp_path / "stderr"
    err.write_text("")
    code = (
        "import logging, sys\n"
        "from isstreamer import journald\n"
        "handler = logging.StreamHandler(sys.stderr)\n"
        "handler.setFormatter(journald.formatter_for(sys.stderr, '%(message)s'))\n"
        "log = logging.getLogger('isstreamer')\n"
        "log.addHandler(handler)\n"
        "log.warning('disk almost full')\n"
        "log.error('cannot reach the receiver')\n"
    )
    with open(err, "w") as fh:
        env = dict(os.environ, JOURNAL_STREAM=stream_id(err))
        subprocess.run([sys.executable, "-c", code], stderr=fh, env=env, check=True, timeout=60)
    assert err.read_text() == "<4>disk almost full\n<3>cannot reach the receiver\n"
