"""`isstreamer log` and `isstreamer pipe` (isstreamer/cli/send.py): delivery, exit statuses,
the deadline, and the lines pipe reads."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from apiserver import ApiServer
from cli_helpers import NOW, SECRET, Cli, cli_fixture, env_fixture, holding_ini, read_until, start  # noqa: F401 (fixtures)

from isstreamer.cli import common as cli_common
from isstreamer.cli import main
from isstreamer.cli.common import EXIT_SPOOLED, host_bucket_key
from isstreamer.spool import Spool


def test_log_delivers_a_float(cli: Cli, api_server: ApiServer) -> None:
    """`log temperature 21.5` sends the float 21.5 and exits 0."""
    done = cli("log", "--bucket-key", "pi", "temperature", "21.5")
    assert done.returncode == 0, done.stderr
    [event] = api_server.events_for("pi")
    assert event["key"] == "temperature" and event["value"] == 21.5
    assert isinstance(event["value"], float)


def test_log_types_epoch_and_string(cli: Cli, api_server: ApiServer) -> None:
    """true is a bool, --string keeps the text, --epoch sets the time; the bucket is per host."""
    assert cli("log", "door_open", "true", "--epoch", str(NOW)).returncode == 0
    assert cli("--bucket-key", "pi", "log", "code", "007", "--string").returncode == 0
    [door] = api_server.events_for(host_bucket_key("log"))
    assert door["value"] is True and door["epoch"] == NOW
    assert api_server.events_for("pi")[0]["value"] == "007"


def test_log_with_a_refused_key_exits_1_and_says_so(cli: Cli, tmp_path: Path) -> None:
    """A refused key (401) keeps the event in the spool, exits 1, names the cause, hides the key."""
    cli.setenv(ISSTREAMER_ACCESS_KEY=SECRET)
    done = cli("log", "t", "1")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "the access key was refused (401 Unauthorized)" in last and "config init" in last
    assert SECRET not in done.stderr
    assert len(Spool(tmp_path / "spool").files()) == 1


def test_log_to_an_address_that_is_no_events_api_exits_1(
    cli: Cli, api_server: ApiServer, tmp_path: Path
) -> None:
    """A 404 (a wrong api_base) cannot get better by waiting: exit 1, saying what to correct."""
    api_server.fail(404, times=None, path="/api/buckets")
    done = cli("log", "t", "1")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "404 Not Found from http://127.0.0.1:" in last and "correct api_base" in last
    assert len(Spool(tmp_path / "spool").files()) == 1


def _closed_port() -> int:
    with socket.socket() as sock:  # bound, never listening: connecting is refused
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_log_to_an_unreachable_receiver_exits_75(cli: Cli, tmp_path: Path) -> None:
    """Nothing listening: the event waits in the spool, exit 75, and the message says why."""
    url = f"http://127.0.0.1:{_closed_port()}"
    done = cli("--api-base", url, "log", "t", "1", "--deadline", "0.3")
    assert done.returncode == EXIT_SPOOLED == 75
    assert f"cannot reach {url}: connection refused" in done.stderr
    assert "kept in the spool" in done.stderr.strip().splitlines()[-1]
    assert len(Spool(tmp_path / "spool").files()) == 1


def test_log_honours_its_deadline_against_a_hung_receiver(
    cli: Cli, api_server: ApiServer, tmp_path: Path
) -> None:
    """A receiver that never answers: log ends at --deadline (not a second later), event spooled."""
    api_server.hang(times=None, path="/api/buckets")
    started = time.monotonic()
    done = cli("log", "t", "1", "--deadline", "0.5")
    elapsed = time.monotonic() - started
    assert done.returncode == EXIT_SPOOLED, done.stderr
    assert len(Spool(tmp_path / "spool").files()) == 1
    # The deadline is the contract: before, log took --deadline plus a fixed 1 s more.
    assert elapsed < 0.5 + 0.75, elapsed


def test_pipe_delivers_good_lines_and_names_the_bad_one(cli: Cli, api_server: ApiServer) -> None:
    """Every accepted format arrives; the bad line is named with its number; a summary ends it."""
    lines = [
        "a,1",
        "b = 2.5",
        "c,hello,1790000000",
        '{"d": true, "e": {"f": 3}, "epoch": 1790000001}',
        "this line has no separator",
        "",
        "# a comment",
        'g,"x, y"',
        "h=yes",
    ]
    done = cli("--bucket-key", "p", "pipe", stdin="\n".join(lines) + "\n")
    assert done.returncode == 0, done.stderr
    got = {e["key"]: e for e in api_server.events_for("p")}
    assert {k: e["value"] for k, e in got.items()} == {
        "a": 1,
        "b": 2.5,
        "c": "hello",
        "d": True,
        "e_f": 3,
        "g": "x, y",
        "h": "yes",
    }
    assert got["c"]["epoch"] == NOW and got["e_f"]["epoch"] == NOW + 1
    bad = [line for line in done.stderr.splitlines() if "skipped" in line]
    assert len(bad) == 1 and "line 5:" in bad[0]
    assert "9 lines, 1 bad, 7 events; 7 delivered" in done.stderr.splitlines()[-1]


def test_pipe_faster_than_the_receiver_waits_for_it(
    cli: Cli, api_server: ApiServer, tmp_path: Path
) -> None:
    """A bulk pipe is slowed to the receiver's pace: everything is delivered, nothing spilled."""
    ini = tmp_path / "bulk.ini"
    ini.write_text("[isstreamer.client_config]\nbuffer_size = 500\n")
    lines = "".join(f"k,{i}\n" for i in range(30_000))
    done = cli("--config", str(ini), "--bucket-key", "bulk", "pipe", stdin=lines)
    assert done.returncode == 0, done.stderr
    assert "30000 delivered, 0 kept in the spool" in done.stderr
    assert [e["value"] for e in api_server.events_for("bulk")] == list(range(30_000))


def test_pipe_sigterm_flushes_within_the_deadline(
    env: dict[str, str], api_server: ApiServer, tmp_path: Path
) -> None:
    """Events read before SIGTERM are delivered, and pipe exits 0 within its deadline."""
    proc = start(env, "--config", str(holding_ini(tmp_path)), "--bucket-key", "p", "-vv", "pipe")
    assert proc.stdin and proc.stderr
    proc.stdin.write("a,1\nb,2\nc,3\n")
    proc.stdin.flush()
    read_until(proc.stderr, "3 lines read")
    assert api_server.events == []  # held in the buffer: only the signal can send them now
    proc.send_signal(signal.SIGTERM)
    # The bound is the wait: the 10 s default deadline plus interpreter exit; no tighter clock.
    assert proc.wait(timeout=30) == 0
    assert [e["key"] for e in api_server.events_for("p")] == ["a", "b", "c"]
    assert "stopped by SIGTERM" in proc.stderr.read()
    proc.stdin.close()


def test_embedded_default_streams_to_the_local_collector(
    api_server: ApiServer,
    access_key: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    tmp_path: Path,
) -> None:
    """With neither key nor api_base, log goes to the local collector and says where to look."""
    monkeypatch.setattr(cli_common, "start_local_collector", lambda: (api_server.url, access_key))
    assert main(["--spill-dir", str(tmp_path / "spool"), "log", "t", "1"]) == 0
    assert api_server.events_for(host_bucket_key("log"))[0]["value"] == 1
    notice = capsys.readouterr().err.strip().splitlines()
    assert len(notice) == 1 and f"open {api_server.url}" in notice[0] and "config init" in notice[0]
