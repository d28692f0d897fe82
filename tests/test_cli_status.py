"""`isstreamer status` (isstreamer/cli/status.py): the agent's counters and the spool."""

from __future__ import annotations

import json
import os
from pathlib import Path

from apiserver import ApiServer
from cli_helpers import NOW, Cli, cli_fixture  # noqa: F401 (fixtures)

from isstreamer.sinks.base import Bucket
from isstreamer.spool import Spool
from isstreamer.status import StatusFile


def test_status_without_an_agent_shows_the_spool(
    cli: Cli, api_server: ApiServer, tmp_path: Path
) -> None:
    """No agent runs: status says so and shows the spool, as text and as JSON."""
    Spool(tmp_path / "spool").write(Bucket("b"), [("k", 1, NOW)], sink=api_server.url)
    done = cli("status")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("agent: none running")
    assert "1 file, 1 event" in done.stdout
    doc = json.loads(cli("status", "--json").stdout)
    assert doc["agents"] == [] and doc["spool"]["files"] == 1 and doc["spool"]["events"] == 1


def test_status_of_a_running_and_a_gone_agent(cli: Cli, tmp_path: Path) -> None:
    """A fresh status file of a live process shows its counters; a dead one's is 'not running'."""
    spool = tmp_path / "spool"
    status = StatusFile(spool, "metrics")
    status.write(
        {
            "interval_s": 10,
            "samples": 7,
            "bucket_key": "metrics-pi",
            "api_base": "https://groker.init.st",
            "stats": {"sent": 140, "on_disk": 2, "queued": 0, "last_error": "503 busy"},
        },
        interval_s=10,
    )
    gone = json.loads(status.path.read_text())
    (spool / ".status-metrics-999999999.json").write_text(json.dumps(dict(gone, pid=999999999)))
    text = cli("status").stdout
    assert f"agent: isstreamer metrics, pid {os.getpid()}, running since" in text
    assert "7 samples, one every 10 s" in text and "to bucket metrics-pi at https://" in text
    assert "140 events delivered, 2 in the spool" in text and "last error: 503 busy" in text
    assert "pid 999999999: not running" in text and "none running" not in text
    agents = json.loads(cli("status", "--json").stdout)["agents"]
    assert sorted((a["pid"], a["running"]) for a in agents) == [
        (os.getpid(), True),
        (999999999, False),
    ]


def test_status_of_a_spool_it_cannot_read_says_so(cli: Cli, tmp_path: Path) -> None:
    """A spill_dir that cannot be listed (here: a file) is exit 1 naming it, not 'no agent'."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    done = cli("--spill-dir", str(blocker), "status")
    assert done.returncode == 1 and "none running" not in done.stdout
    assert f"cannot read the spool directory {blocker}: Not a directory" in done.stderr
