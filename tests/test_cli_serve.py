"""`isstreamer serve` (isstreamer/cli/serve.py): wired to the collector, global options."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from cli_helpers import env_fixture, read_until, start  # noqa: F401 (fixtures)

from isstreamer.cli import main


def test_serve_is_wired_to_the_collector(capsys: Any) -> None:
    """`serve --help` shows the collector's own options."""
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--port" in out and "--retention-days" in out


@pytest.mark.parametrize(
    "before, after",
    [
        (["-q", "--access-key", "K-1"], []),
        ([], ["-v", "--access-key", "K-1", "--config", "/nonexistent.ini"]),
    ],
)
def test_serve_takes_the_global_options_before_or_after_it(
    env: dict[str, str], tmp_path: Path, before: list, after: list
) -> None:
    """Global options work on either side of `serve`; --access-key names the key clients send."""
    proc = start(env, *before, "serve", "--port", "0", "--db", str(tmp_path / "c.db"), *after)
    try:
        assert proc.stdout is not None
        url = read_until(proc.stdout, "listening on").split()[-1]
        body = json.dumps([{"key": "k", "value": 1}])
        answers = [
            requests.post(
                f"{url}/api/events",
                data=body,
                timeout=10,
                headers={
                    "X-IS-AccessKey": key,
                    "X-IS-BucketKey": "b",
                    "Content-Type": "application/json",
                },
            ).status_code
            for key in ("K-1", "wrong")
        ]
        assert answers == [204, 401]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "stopped" in out


def test_under_systemd_serve_notifies_and_keeps_its_new_key_out_of_the_journal(
    env: dict[str, str], tmp_path: Path
) -> None:
    """As a Type=notify unit: READY=1 once it listens, STOPPING=1 at SIGTERM, no key in the log."""
    journal, db = tmp_path / "journal", tmp_path / "c.db"
    notify_path = tmp_path / "notify"
    with open(journal, "w") as out, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(30)
        st = os.fstat(out.fileno())
        child_env = dict(
            env, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}", NOTIFY_SOCKET=str(notify_path)
        )
        child_env.pop("ISSTREAMER_ACCESS_KEY")  # serve then generates a key of its own
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "isstreamer",
                "serve",
                "--port",
                "0",
                "--db",
                str(tmp_path / "c.db"),
            ],
            env=child_env,
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
        )
        try:
            assert notify.recv(100) == b"READY=1"
        finally:
            proc.send_signal(signal.SIGTERM)
        assert notify.recv(100) == b"STOPPING=1"
        assert proc.wait(timeout=30) == 0
    key = db.with_suffix(".key").read_text().strip()
    logged = journal.read_text()
    assert "listening on" in logged and "saved in" in logged
    assert key and key not in logged
