"""Offline mode's CSV sink: epoch,key,value rows appended to a file that is never truncated."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from isstreamer.sinks.base import Bucket, Outcome, Sink
from isstreamer.sinks.csvfile import HEADER, CsvFileSink, offline_path

BUCKET = Bucket("b")


def rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_sink_satisfies_protocol(tmp_path: Path) -> None:
    """The CSV sink speaks the Sink protocol and its address is a file URL."""
    sink = CsvFileSink(tmp_path / "out.csv")
    assert isinstance(sink, Sink)
    assert sink.address == f"file://{(tmp_path / 'out.csv').resolve()}"


def test_header_written_once_rows_appended(tmp_path: Path) -> None:
    """The first send writes the epoch,key,value header; later sends only append rows."""
    path = tmp_path / "out.csv"
    sink = CsvFileSink(path)
    assert sink.send(BUCKET, [("temp", 21.5, 1700000000.25)]).ok
    assert sink.send(BUCKET, [("temp", 22, 1700000001.0), ("name", "kitchen", 1700000002.0)]).ok
    assert rows(path) == [
        list(HEADER),
        ["1700000000.25", "temp", "21.5"],
        ["1700000001.0", "temp", "22"],
        ["1700000002.0", "name", "kitchen"],
    ]
    assert HEADER == ("epoch", "key", "value")


def test_existing_file_never_truncated_across_sinks(tmp_path: Path) -> None:
    """A second sink (a restart) appends to the previous run's file without a second header."""
    path = tmp_path / "out.csv"
    CsvFileSink(path).send(BUCKET, [("a", 1, 1.0), ("b", 2, 2.0)])
    CsvFileSink(path).send(BUCKET, [("c", 3, 3.0)])
    assert rows(path) == [list(HEADER), ["1.0", "a", "1"], ["2.0", "b", "2"], ["3.0", "c", "3"]]


def test_foreign_existing_content_kept(tmp_path: Path) -> None:
    """A non-empty file that was not ours is appended to, never rewritten."""
    path = tmp_path / "out.csv"
    path.write_text("previous,data,here\n")
    CsvFileSink(path).send(BUCKET, [("k", 1, 1.0)])
    assert rows(path) == [["previous", "data", "here"], ["1.0", "k", "1"]]


def test_empty_existing_file_gets_header(tmp_path: Path) -> None:
    """An existing but empty file is treated as new and gets the header."""
    path = tmp_path / "out.csv"
    path.touch()
    CsvFileSink(path).send(BUCKET, [("k", 1, 1.0)])
    assert rows(path)[0] == list(HEADER)


def test_booleans_as_true_false(tmp_path: Path) -> None:
    """Booleans are written true/false so they can be told from the strings "True"/"False"."""
    path = tmp_path / "out.csv"
    CsvFileSink(path).send(BUCKET, [("on", True, 1.0), ("off", False, 2.0), ("s", "True", 3.0)])
    assert [r[2] for r in rows(path)[1:]] == ["true", "false", "True"]


def test_strings_with_commas_quotes_and_newlines_round_trip(tmp_path: Path) -> None:
    """Values with separators survive a csv.reader round trip."""
    path = tmp_path / "out.csv"
    tricky = 'a, "quoted"\nline'
    CsvFileSink(path).send(BUCKET, [("k,1", tricky, 1.0)])
    assert rows(path)[1] == ["1.0", "k,1", tricky]


def test_epoch_keeps_full_precision(tmp_path: Path) -> None:
    """Float epochs are written with repr precision, not rounded."""
    path = tmp_path / "out.csv"
    CsvFileSink(path).send(BUCKET, [("k", 1, 1700000000.123456)])
    assert float(rows(path)[1][0]) == 1700000000.123456


def test_parent_directory_created(tmp_path: Path) -> None:
    """A missing parent directory is created."""
    path = tmp_path / "a" / "b" / "out.csv"
    assert CsvFileSink(path).send(BUCKET, [("k", 1, 1.0)]).ok
    assert path.exists()


def test_unwritable_path_is_retry_not_exception(tmp_path: Path) -> None:
    """A path that cannot be written returns RETRY with the reason instead of raising."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CsvFileSink(blocker / "out.csv").send(BUCKET, [("k", 1, 1.0)])
    assert result.outcome is Outcome.RETRY and "out.csv" in result.message


def test_close_is_harmless(tmp_path: Path) -> None:
    """close() can be called twice, touches no file, and the rows written before stay whole."""
    path = tmp_path / "out.csv"
    sink = CsvFileSink(path)
    sink.close()
    assert not path.exists()  # closing an unused sink creates nothing
    assert sink.send(BUCKET, [("k", 1, 1.0)]).ok
    sink.close()
    sink.close()
    assert len(rows(path)) == 2  # the header and the one row


@pytest.mark.parametrize(
    "given, expected",
    [
        ("out", "out.csv"),
        ("out.csv", "out.csv"),
        ("out.CSV", "out.CSV"),
        ("out.txt", "out.txt.csv"),
        ("dir/data", "dir/data.csv"),
    ],
)
def test_offline_path_adds_csv_unless_present(given: str, expected: str) -> None:
    """offline_file gets ".csv" appended as in ISStreamer, but never twice."""
    assert offline_path(given) == Path(expected)


def test_offline_path_expands_home() -> None:
    """A ~ in offline_file means the home directory."""
    assert offline_path("~/data/out") == Path(os.path.expanduser("~")) / "data" / "out.csv"
