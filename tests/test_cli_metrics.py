"""`isstreamer metrics` (isstreamer/cli/metrics.py): samples sent or printed, the status file,
SIGHUP reloads and SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path
from typing import Any

import pytest
from apiserver import ApiServer
from cli_helpers import Cli, cli_fixture, env_fixture, read_until, start  # noqa: F401 (fixtures)

from isstreamer.cli import main
from isstreamer.cli.common import EXIT_SPOOLED, host_bucket_key
from isstreamer.cli.send import parse_line


def test_metrics_once_sends_system_keys(cli: Cli, api_server: ApiServer) -> None:
    """`metrics --once` sends 10+ system keys, cpu and memory among them, to metrics-<host>."""
    done = cli("metrics", "--once", "--interval", "0.1")
    assert done.returncode == 0, done.stderr
    bucket = host_bucket_key("metrics")
    keys = {e["key"] for e in api_server.events_for(bucket)}
    assert len(keys) >= 10, keys
    assert {"cpu_total", "mem_percent", "load_1", "uptime_s", "process_count"} <= keys
    assert any(k.startswith("disk_root_") for k in keys)
    assert api_server.buckets[bucket].endswith(" metrics")


def test_metrics_print_sends_nothing_and_pipe_reads_it(cli: Cli, api_server: ApiServer) -> None:
    """--print writes one JSON line per sample, sends nothing, and `pipe` reads the line back."""
    done = cli("metrics", "--print", "--once", "--interval", "0.1")
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    sample = json.loads(line)
    assert {"cpu_total", "mem_percent", "epoch"} <= set(sample)
    events = parse_line(line)
    assert len(events) == len(sample) - 1 and {e[2] for e in events} == {sample["epoch"]}
    assert api_server.requests == []


def test_metrics_once_to_an_unreachable_receiver_exits_75(cli: Cli) -> None:
    """--once with nothing listening keeps the sample in the spool and exits 75."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        done = cli("--api-base", url, "metrics", "--once", "--interval", "0.1", "--deadline", "0.3")
    assert done.returncode == EXIT_SPOOLED, done.stderr
    assert "connection refused" in done.stderr


def _ini(path: Path, bucket: str, extra: str = "") -> Path:
    # Batches that never fill or age: samples leave only when a Streamer closes.
    path.write_text(
        "[isstreamer.client_config]\nbuffer_size = 100000\nflush_interval = 3600\n"
        f"bucket_key = {bucket}\n{extra}"
    )
    return path


def _status(capsys: Any, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict:
    monkeypatch.setenv("ISSTREAMER_SPILL_DIR", env["ISSTREAMER_SPILL_DIR"])
    assert main(["status", "--json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


def test_metrics_status_reload_and_stop(
    env: dict[str, str],
    api_server: ApiServer,
    tmp_path: Path,
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A running agent shows in `status`; SIGHUP re-reads the ini (a broken one is refused);
    SIGTERM delivers what is held, exits 0 and removes the status file."""
    ini = _ini(tmp_path / "agent.ini", "before")
    proc = start(env, "--config", str(ini), "-v", "metrics", "--interval", "0.2")
    assert proc.stderr
    try:
        read_until(proc.stderr, "metrics: sample 1")
        [agent] = _status(capsys, monkeypatch, env)["agents"]
        assert agent["running"] and agent["pid"] == proc.pid and agent["bucket_key"] == "before"
        assert agent["stats"]["logged"] > 0 and agent["api_base"] == api_server.url
        assert api_server.events == []  # held: nothing leaves before a reload or a stop
        _ini(ini, "before", "buffer_size = lots\n")
        proc.send_signal(signal.SIGHUP)
        assert "still streaming as before" in read_until(proc.stderr, "SIGHUP")
        _ini(ini, "after")
        proc.send_signal(signal.SIGHUP)
        read_until(proc.stderr, "configuration re-read; streaming to bucket after")
        assert "cpu_total" in {e["key"] for e in api_server.events_for("before")}
        read_until(proc.stderr, "to bucket after")  # a sample for the new bucket
        proc.send_signal(signal.SIGTERM)
        # The bound is the wait: the 10 s default deadline plus interpreter exit.
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "cpu_total" in {e["key"] for e in api_server.events_for("after")}
    assert "stopped by SIGTERM" in proc.stderr.read()
    assert _status(capsys, monkeypatch, env)["agents"] == []
