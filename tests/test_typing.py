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


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One mypy --strict run over both programs (a second run would cost seconds more)."""
    pytest.importorskip("mypy")
    where = tmp_path_factory.mktemp("typing")
    (where / "good_program.py").write_text(GOOD)
    (where / "bad_program.py").write_text(BAD)
    env = dict(os.environ, MYPYPATH=str(ROOT))
    # follow-imports=silent: as for an installed package, only the user's code is reported.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--follow-imports=silent",
            "--cache-dir",
            str(where / "cache"),
            "good_program.py",
            "bad_program.py",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=where,
    )
    assert "bad_program.py:" in done.stdout, done.stdout + done.stderr  # mypy did run
    return done.stdout


def errors_in(output: str, program: str) -> set[int]:
    return {
        int(line.split(":")[1])
        for line in output.splitlines()
        if line.startswith(f"{program}:") and ": error:" in line
    }


def test_mypy_accepts_a_typical_user_program(mypy_output: str) -> None:
    """A program using log(), attributes, stats(), the handler and asyncio passes mypy --strict."""
    assert errors_in(mypy_output, "good_program.py") == set(), mypy_output


def test_mypy_catches_wrong_arguments(mypy_output: str) -> None:
    """None or a list as value, a list as epoch, a misspelt stats key: each is a type error."""
    assert errors_in(mypy_output, "bad_program.py") == set(range(5, 12)), mypy_output
