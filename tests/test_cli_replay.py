"""`isstreamer replay` (isstreamer/cli/replay.py): spool, legacy files, and its exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

from apiserver import ApiServer
from cli_helpers import NOW, SECRET, Cli, cli_fixture  # noqa: F401 (fixtures)

from isstreamer.cli.common import EXIT_SPOOLED
from isstreamer.sinks.base import Bucket
from isstreamer.spool import Spool


def test_replay_of_a_spill_directory(cli: Cli, api_server: ApiServer, tmp_path: Path) -> None:
    """`replay` with no path sends the spool to each file's bucket and empties it."""
    spool = Spool(tmp_path / "spool")
    spool.write(Bucket("b1"), [("k", 1, NOW), ("k", 2, NOW + 1)], sink=api_server.url)
    spool.write(Bucket("b2"), [("j", True, NOW)], sink=api_server.url)
    done = cli("replay")
    assert done.returncode == 0, done.stderr
    assert "3 events delivered" in done.stderr
    assert [e["value"] for e in api_server.events_for("b1")] == [1, 2]
    assert api_server.events_for("b2")[0]["value"] is True
    assert spool.files() == []
    other = Spool(tmp_path / "elsewhere")
    other.write(Bucket("b3"), [("x", 0.5, NOW)], sink=api_server.url)
    assert cli("replay", str(other.directory)).returncode == 0
    assert api_server.events_for("b3")[0]["value"] == 0.5


def test_replay_of_legacy_missed_events(cli: Cli, api_server: ApiServer, tmp_path: Path) -> None:
    """ISStreamer's err_missed_events.txt is sent to --bucket-key with its own epochs."""
    missed = tmp_path / "err_missed_events.txt"
    missed.write_text(
        json.dumps(
            [
                {"key": "t", "value": 20.5, "epoch": NOW},
                {"key": "t", "value": 21, "epoch": NOW + 60},
            ]
        )
        + "\n"
    )
    done = cli("replay", "--bucket-key", "old-pi", str(missed))
    assert done.returncode == 0, done.stderr
    assert [(e["value"], e["epoch"]) for e in api_server.events_for("old-pi")] == [
        (20.5, NOW),
        (21, NOW + 60),
    ]


def test_replay_of_an_offline_csv(cli: Cli, api_server: ApiServer, tmp_path: Path) -> None:
    """An offline-mode CSV, with or without its header, is sent with its types."""
    with_header = tmp_path / "out.csv"
    with_header.write_text(
        f"epoch,key,value\n{NOW},temp,21.5\n{NOW + 1},on,true\n{NOW + 2},word,hello\n"
    )
    bare = tmp_path / "bare.csv"
    bare.write_text(f"{NOW + 3},count,7\n")
    done = cli("--bucket-key", "csv", "replay", str(with_header), str(bare))
    assert done.returncode == 0, done.stderr
    assert [e["value"] for e in api_server.events_for("csv")] == [21.5, True, "hello", 7]


def test_replay_exit_statuses(cli: Cli, api_server: ApiServer, tmp_path: Path) -> None:
    """Unreachable: 75, file kept; refused key: 1; a missing file: 1; no bucket for a CSV: 2."""
    server = ApiServer().start()
    spool = Spool(tmp_path / "spool")
    spool.write(Bucket("b1"), [("k", 1, NOW)], sink=server.url)
    server.stop()
    done = cli("--api-base", server.url, "replay", "--timeout", "0.3")
    assert done.returncode == EXIT_SPOOLED, done.stderr
    assert "still in the spool" in done.stderr and "connection refused" in done.stderr
    assert len(spool.files()) == 1
    cli.setenv(ISSTREAMER_ACCESS_KEY=SECRET)
    refused = cli("--api-base", api_server.url, "replay", "--any-receiver", "--timeout", "2")
    assert refused.returncode == 1 and "access key was refused" in refused.stderr
    assert len(spool.files()) == 1 and SECRET not in refused.stderr
    missing = cli("replay", str(tmp_path / "nope.csv"))
    assert missing.returncode == 1 and "no such file" in missing.stderr
    csv = tmp_path / "one.csv"
    csv.write_text(f"{NOW},k,1\n")
    no_bucket = cli("replay", str(spool.files()[0]), str(csv))
    assert no_bucket.returncode == 2 and "bucket key" in no_bucket.stderr
