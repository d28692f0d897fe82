"""Smoke test of the benchmark suite: it runs end to end and reports every section.

Benchmarks are not tests: nothing here looks at a time or a rate, only at the shape of the
report, so a slow or busy machine cannot fail it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = (
    "machine",
    "command",
    "legacy",
    "sizes",
    "log_cost",
    "cpu_per_10k",
    "end_to_end",
    "outage",
    "idle",
    "replay",
    "sensor",
    "burst",
    "collector",
    "redis",
    "goals",
)
TINY = ["--quick", "--scale", "0.05", "--idle-seconds", "0.2", "--no-legacy", "--no-external"]


@pytest.mark.slow
def test_quick_run_reports_every_section(tmp_path: Path) -> None:
    """`python -m bench --quick` on a tiny workload writes JSON with every section and the table."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", *TINY, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert set(SECTIONS) <= set(report)
    for section in (
        "log_cost",
        "cpu_per_10k",
        "end_to_end",
        "outage",
        "idle",
        "replay",
        "sensor",
        "burst",
    ):
        assert report[section].get("isstreamer"), f"{section} has no isstreamer figures"
        assert "error" not in json.dumps(report[section]), report[section]
    for baseline in ("requests", "requests+json", "http.client"):
        assert set(report["end_to_end"][baseline]) == {"10", "100", "1000"}
    assert len(report["goals"]) == 10
    assert set(report["sensor"]) >= {"isstreamer", "floor"}
    assert all({"goal", "figure", "met"} <= set(goal) for goal in report["goals"])
    assert "| goal | measured | verdict |" in proc.stdout
