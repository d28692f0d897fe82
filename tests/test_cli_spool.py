"""`isstreamer spool` (isstreamer/cli/spool.py): list, show, purge, and the JSON summary."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from apiserver import ApiServer
from cli_helpers import NOW, Cli, cli_fixture  # noqa: F401 (fixtures)

from isstreamer.sinks.base import Bucket
from isstreamer.spool import QUARANTINE, Spool


@pytest.fixture
def filled(api_server: ApiServer, tmp_path: Path) -> tuple[Spool, Path]:
    """A spool with two files (3 events) and one quarantined file; and the first file."""
    spool = Spool(tmp_path / "spool")
    first = spool.write(
        Bucket("b1"), [("k", 1, NOW), ("k", 2, NOW)], sink=api_server.url, last_error="503 busy"
    )
    spool.write(Bucket("b1"), [("k", 3, NOW)], sink=api_server.url, last_error="cannot reach")
    spool.quarantine_batch(
        Bucket("b1"), [("bad", 1, NOW)], sink=api_server.url, reason="400: bad value"
    )
    return spool, first


def test_spool_lists_shows_and_purges(cli: Cli, filled: tuple[Spool, Path]) -> None:
    """spool summarises files and quarantine, show prints one file, purge needs --yes (no tty)."""
    spool, first = filled
    listed = cli("spool")
    assert listed.returncode == 0, listed.stderr
    assert "2 files, 3 events" in listed.stdout and "last error: cannot reach" in listed.stdout
    assert "quarantine: 1 file, 1 event" in listed.stdout
    long = cli("spool", "list", "-l")
    assert first.name in long.stdout and "503 busy" in long.stdout
    assert "400: bad value" in cli("spool", "list", "--quarantine").stdout
    shown = cli("spool", "show", first.name)
    assert shown.returncode == 0 and "bucket       b1" in shown.stdout and "k = 2" in shown.stdout
    assert cli("spool", "show", "nope.json").returncode == 1
    refused = cli("spool", "purge")
    assert refused.returncode == 1 and "--yes" in refused.stderr and len(spool.files()) == 2
    assert cli("spool", "purge", "--yes", "--all").returncode == 0
    assert spool.files() == [] and not list((spool.directory / QUARANTINE).iterdir())


def test_spool_json_before_or_after_list(cli: Cli, filled: tuple[Spool, Path]) -> None:
    """--json gives the summary as data, the same before `list` and after it; -l adds entries."""
    spool, first = filled
    plain = json.loads(cli("spool", "--json").stdout)
    assert plain == json.loads(cli("spool", "--json", "list").stdout)
    assert plain["files"] == 2 and plain["events"] == 3 and plain["last_error"] == "cannot reach"
    assert plain["quarantine"] == {"files": 1, "events": 1} and plain["being_sent"] == 0
    assert plain["directory"] == str(spool.directory) and plain["bytes"] > 0
    assert "entries" not in plain
    long = json.loads(cli("spool", "list", "-l", "--json").stdout)
    assert [e["name"] for e in long["entries"]] == [p.name for p in spool.files()]
    assert long["entries"][0]["events"] == 2 and long["entries"][0]["note"] == "503 busy"
    held = json.loads(cli("spool", "list", "--quarantine", "--json").stdout)
    assert held["files"] == 1 and held["last_reason"] == "400: bad value"


def test_spool_commands_with_untrusted_and_old_files(
    cli: Cli, api_server: ApiServer, tmp_path: Path
) -> None:
    """spool list/show never block on a FIFO, read old names, and show the time a name carries."""
    spool = Spool(tmp_path / "spool")
    new = spool.write(Bucket("b1"), [("k", 1, NOW)], sink=api_server.url, created=NOW)
    old = spool.directory / "20200101T000000.000000-0123456789ab-n1.json"
    old.write_bytes(new.read_bytes())
    fifo = spool.directory / "s00000000000000000099-20200101T000000.000000-abc-n5.json"
    os.mkfifo(fifo)
    long = cli("spool", "list", "-l")
    assert long.returncode == 0, long.stderr
    assert "2 files, 2 events" in long.stdout and fifo.name not in long.stdout
    assert long.stdout.index(old.name) < long.stdout.index(new.name)  # the old name sorts first
    assert "2020-01-01 00:00:00 UTC" in long.stdout and "2026-09-21" in long.stdout
    shown = cli("spool", "show", fifo.name)
    assert shown.returncode == 1 and "not a regular file" in shown.stderr
    assert cli("spool", "show", old.name).returncode == 0
