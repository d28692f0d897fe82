"""Running the `isstreamer` command in tests: in-process through main(argv) (fast), or as a
real process where one matters (signals, the exit status of the interpreter).

Test modules take the fixtures by importing ``cli_fixture`` / ``env_fixture``; the tests
name them ``cli`` and ``env``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from apiserver import ApiServer

from isstreamer.cli import main

NOW = 1_790_000_000.0
SECRET = "ist_0123456789abcdef-very-secret-key"


@dataclass
class Done:
    """What a run of the command left: its exit status and its output."""

    returncode: int
    stdout: str
    stderr: str


class Cli:
    """Calls main(argv) with stdin from a file and returns a Done (output read by capsys)."""

    def __init__(self, capsys: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self.capsys = capsys
        self.monkeypatch = monkeypatch
        self.tmp_path = tmp_path
        self.runs = 0

    def __call__(self, *argv: str, stdin: str = "") -> Done:
        self.runs += 1
        path = self.tmp_path / f"stdin-{self.runs}"
        path.write_text(stdin)
        self.capsys.readouterr()  # what earlier steps printed is not this run's
        with open(path) as stream:
            self.monkeypatch.setattr(sys, "stdin", stream)
            code = main(list(argv))
        out, err = self.capsys.readouterr()
        return Done(code, out, err)

    def setenv(self, **values: str) -> None:
        for name, value in values.items():
            self.monkeypatch.setenv(name, value)

    def delenv(self, *names: str) -> None:
        for name in names:
            self.monkeypatch.delenv(name, raising=False)


@pytest.fixture(name="cli")
def cli_fixture(
    api_server: ApiServer,
    access_key: str,
    tmp_path: Path,
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Cli]:
    """The command in-process, pointed at the test server, its key and a spool in tmp_path."""
    monkeypatch.setenv("ISSTREAMER_API_BASE", api_server.url)
    monkeypatch.setenv("ISSTREAMER_ACCESS_KEY", access_key)
    monkeypatch.setenv("ISSTREAMER_SPILL_DIR", str(tmp_path / "spool"))
    yield Cli(capsys, monkeypatch, tmp_path)


@pytest.fixture(name="env")
def env_fixture(api_server: ApiServer, access_key: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a CLI subprocess: the test server, its key, a spool in tmp_path."""
    return dict(
        os.environ,
        ISSTREAMER_API_BASE=api_server.url,
        ISSTREAMER_ACCESS_KEY=access_key,
        ISSTREAMER_SPILL_DIR=str(tmp_path / "spool"),
        PYTHONUNBUFFERED="1",
    )


def run(
    env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """The command as a child process (for what needs a real one)."""
    return subprocess.run(  # noqa: PLW1510 (callers assert the exit status)
        [sys.executable, "-m", "isstreamer", *args],
        env=env,
        input=stdin,
        text=True,
        capture_output=True,
        timeout=timeout,
    )


def start(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "isstreamer", *args],
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def read_until(stream: IO[str], text: str) -> str:
    """Read lines until one contains ``text`` (the process says it got that far)."""
    seen = ""
    for line in stream:
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"{text!r} never appeared; output was:\n{seen}")


def holding_ini(tmp_path: Path) -> Path:
    """An ini whose batches never fill or age: events leave only on flush or close."""
    ini = tmp_path / "holding.ini"
    ini.write_text("[isstreamer.client_config]\nbuffer_size = 100000\nflush_interval = 3600\n")
    return ini
