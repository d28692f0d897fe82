"""The public annotations, as a type checker sees them from user code (mypy on small programs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from isstreamer import Streamer, StreamerHandler


def main() -> None:
    s = Streamer(bucket_name="B", bucket_key="b", access_key="k", buffer_size=5)
    s.log("t", 21.5)
    s.log(3, 3, epoch=1_600_000_000)
    s.log("d", Decimal("1.5"), epoch=dt.datetime.now(dt.timezone.utc))
    s.log("s", "on", epoch="2026-12-01T10:00:00Z")
    s.log_object({"a": 1}, key_prefix="", epoch=None)
    s.set_bucket("C", "c", retries=3)
    s.BucketKey = "c"
    s.BufferSize = 20
    s.AccessKey = "other"
    sent: int = s.stats()["sent"]
    error: str = s.stats()["last_error"]
    ok: bool = s.flush(1.0) and s.close(2.0)
    logging.getLogger("app").addHandler(StreamerHandler(s, level=logging.INFO, key="app"))
    print(sent, error, ok)


async def amain() -> bool:
    async with Streamer(bucket_key="b", offline=True) as s:
        s.log("x", True)
        return await s.aflush(1.0) and await s.aclose(1.0)
"""

# Each line is a mistake the annotations must catch.
BAD = """
from isstreamer import Streamer

s = Streamer(bucket_key="b", offline=True)
s.log("t", None)
s.log("t", [1, 2])
s.log("t", 1, epoch=[1600000000])
s.stats()["snet"]
s.flush("soon")
s.BufferSize = "10"
x: str = s.stats()["sent"]
"""


def _mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess:
    program = tmp_path / "user_program.py"
    program.write_text(source)
    env = dict(os.environ, MYPYPATH=str(ROOT))
    # follow-imports=silent: as for an installed package, only the user's code is reported.
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--follow-imports=silent",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(program),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )


def test_mypy_accepts_a_typical_user_program(tmp_path: Path) -> None:
    """A program using log(), attributes, stats(), the handler and asyncio passes mypy --strict."""
    pytest.importorskip("mypy")
    out = _mypy(tmp_path, GOOD)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_catches_wrong_arguments(tmp_path: Path) -> None:
    """None or a list as value, a list as epoch, a misspelt stats key: each is a type error."""
    pytest.importorskip("mypy")
    out = _mypy(tmp_path, BAD)
    flagged = {
        int(line.split(":")[1])
        for line in out.stdout.splitlines()
        if "user_program.py:" in line and ": error:" in line
    }
    assert flagged == set(range(5, 12)), out.stdout
