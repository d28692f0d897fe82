"""The key guard of conftest.py: a test whose output shows a test access key fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent

INNER_TESTS = """
import logging
import subprocess
import sys

KEY = "test-access-key"


def test_print_leaks():
    print("key", KEY)


def test_warning_leaks():
    logging.getLogger("isstreamer").warning("using %s", KEY)


def test_other_logger_exception_leaks():
    try:
        raise RuntimeError("bad key " + KEY)
    except RuntimeError:
        logging.getLogger("somelib").error("failed", exc_info=True)


def test_read_output_leaks(capsys):
    print(KEY)
    assert KEY in capsys.readouterr().out


def test_subprocess_stderr_leaks():
    subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('%s')" % KEY], check=True)


def test_captured_child_output_leaks():
    done = subprocess.run([sys.executable, "-c", "print('%s')" % KEY], capture_output=True)
    assert done.returncode == 0


def test_redacted_form_is_fine(caplog):
    print("key ...ey, " + "\\u2026ey")
    logging.getLogger("isstreamer").warning("key \\u2026ey")


def test_key_on_a_command_line_is_fine():
    subprocess.run([sys.executable, "-c", "pass", "--access-key", KEY], check=True)


def test_unlogged_debug_is_not_output():
    logging.getLogger("isstreamer").debug("not emitted: %s", KEY)
"""


@pytest.fixture(scope="module")
def inner_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Run a small suite with this conftest.py; return its report."""
    root = tmp_path_factory.mktemp("guard")
    # conftest.py with the helper modules it imports
    for name in ("conftest.py", "apiserver.py", "rediscluster.py", "redisserver.py"):
        shutil.copy(HERE / name, root / name)
    (root / "test_inner.py").write_text(INNER_TESTS)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-q", str(root)],
        check=False,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, COLUMNS="400"),
    )  # summary lines in full
    return done.stdout + done.stderr


@pytest.mark.parametrize(
    "name",
    [
        "test_print_leaks",
        "test_warning_leaks",
        "test_other_logger_exception_leaks",
        "test_read_output_leaks",
        "test_subprocess_stderr_leaks",
        "test_captured_child_output_leaks",
    ],
)
def test_leaking_test_fails(inner_run: str, name: str) -> None:
    """Each way of showing the key (stdout, a log record, a traceback, read output, a child's
    inherited stderr or captured output) fails the test that did it."""
    assert f"ERROR test_inner.py::{name} - Failed: a test access key was shown in full" in inner_run


@pytest.mark.parametrize(
    "name",
    [
        "test_redacted_form_is_fine",
        "test_key_on_a_command_line_is_fine",
        "test_unlogged_debug_is_not_output",
    ],
)
def test_clean_test_passes(inner_run: str, name: str) -> None:
    """The redacted form, a key passed only as an argument and records never emitted pass."""
    assert f"PASSED test_inner.py::{name}" in inner_run
    assert f"ERROR test_inner.py::{name}" not in inner_run


def test_report_masks_the_key(inner_run: str) -> None:
    """The guard's own failure message says where, with the key masked."""
    assert "log record isstreamer WARNING from " in inner_run
    assert "test_inner.py:14: isstreamer WARNING using <KEY>" in inner_run
    assert "6 errors" in inner_run
