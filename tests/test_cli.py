"""The `isstreamer` command, run as a subprocess against the local events server."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import pytest
import requests
from apiserver import ApiServer

from isstreamer.cli import build_parser, main
from isstreamer.cli import common as cli_common
from isstreamer.cli.common import host_bucket_key
from isstreamer.cli.signals import StopSignal
from isstreamer.sinks.base import Bucket
from isstreamer.spool import QUARANTINE, Spool

NOW = 1_790_000_000.0
SECRET = "ist_0123456789abcdef-very-secret-key"


@pytest.fixture
def env(api_server: ApiServer, access_key: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a CLI run: the test server, its key, a spool in tmp_path."""
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


def test_log_delivers_a_float(env: dict[str, str], api_server: ApiServer) -> None:
    """`log temperature 21.5` sends the float 21.5 and exits 0."""
    done = run(env, "log", "--bucket-key", "pi", "temperature", "21.5")
    assert done.returncode == 0, done.stderr
    [event] = api_server.events_for("pi")
    assert (
        event["key"] == "temperature"
        and event["value"] == 21.5
        and isinstance(event["value"], float)
    )


def test_log_types_epoch_and_string(env: dict[str, str], api_server: ApiServer) -> None:
    """true is a bool, --string keeps the text, --epoch sets the time; the bucket is per host."""
    assert run(env, "log", "door_open", "true", "--epoch", str(NOW)).returncode == 0
    assert run(env, "--bucket-key", "pi", "log", "code", "007", "--string").returncode == 0
    [door] = api_server.events_for(host_bucket_key("log"))
    assert door["value"] is True and door["epoch"] == NOW
    assert api_server.events_for("pi")[0]["value"] == "007"


def test_log_spills_when_the_receiver_refuses(env: dict[str, str], tmp_path: Path) -> None:
    """A refused key (401) keeps the event in the spool, exits 0, and never prints the key."""
    done = run(dict(env, ISSTREAMER_ACCESS_KEY=SECRET), "log", "t", "1")
    assert done.returncode == 0, done.stderr
    assert "kept in the spool" in done.stderr and "401" in done.stderr
    assert SECRET not in done.stderr
    assert len(Spool(tmp_path / "spool").files()) == 1


@pytest.mark.slow
def test_config_problems_exit_2_without_traceback(env: dict[str, str], tmp_path: Path) -> None:
    """No key, a bad URL or a missing ini: exit 2 and one line that says what to do."""
    no_key = {k: v for k, v in env.items() if k != "ISSTREAMER_ACCESS_KEY"}
    for args, environ, words in (
        (("log", "t", "1"), no_key, "no access key"),
        (("--api-base", "ftp://x", "log", "t", "1"), env, "api_base"),
        (("--config", str(tmp_path / "missing.ini"), "config"), env, "does not exist"),
    ):
        done = run(environ, *args)
        assert done.returncode == 2, done.stderr
        assert words in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_pipe_delivers_good_lines_and_names_the_bad_one(
    env: dict[str, str], api_server: ApiServer
) -> None:
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
    done = run(env, "--bucket-key", "p", "pipe", stdin="\n".join(lines) + "\n")
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


@pytest.mark.slow
def test_pipe_faster_than_the_receiver_waits_for_it(
    env: dict[str, str], api_server: ApiServer, tmp_path: Path
) -> None:
    """A bulk pipe is slowed to the receiver's pace: everything is delivered, nothing spilled."""
    ini = tmp_path / "bulk.ini"
    ini.write_text("[isstreamer.client_config]\nbuffer_size = 500\n")
    lines = "".join(f"k,{i}\n" for i in range(60_000))
    done = run(env, "--config", str(ini), "--bucket-key", "bulk", "pipe", stdin=lines)
    assert done.returncode == 0, done.stderr
    assert "60000 delivered, 0 kept in the spool" in done.stderr
    assert [e["value"] for e in api_server.events_for("bulk")] == list(range(60_000))


def test_pipe_sigterm_flushes_within_the_deadline(
    env: dict[str, str], api_server: ApiServer, tmp_path: Path
) -> None:
    """Events read before SIGTERM are delivered, and pipe exits 0 within its deadline."""
    proc = start(
        env,
        "--config",
        str(holding_ini(tmp_path)),
        "--bucket-key",
        "p",
        "-vv",
        "pipe",
        "--deadline",
        "5",
    )
    assert proc.stdin and proc.stderr
    proc.stdin.write("a,1\nb,2\nc,3\n")
    proc.stdin.flush()
    read_until(proc.stderr, "3 lines read")
    assert api_server.events == []  # held in the buffer: only the signal can send them now
    proc.send_signal(signal.SIGTERM)
    # The bound is the wait: its 5 s --deadline plus interpreter exit, generous on a busy
    # machine; no tighter clock.
    assert proc.wait(timeout=10) == 0
    assert [e["key"] for e in api_server.events_for("p")] == ["a", "b", "c"]
    assert "stopped by SIGTERM" in proc.stderr.read()
    proc.stdin.close()


def test_replay_of_a_spill_directory(
    env: dict[str, str], api_server: ApiServer, tmp_path: Path
) -> None:
    """`replay` with no path sends the spool to each file's bucket and empties it."""
    spool = Spool(tmp_path / "spool")
    spool.write(Bucket("b1"), [("k", 1, NOW), ("k", 2, NOW + 1)], sink=api_server.url)
    spool.write(Bucket("b2"), [("j", True, NOW)], sink=api_server.url)
    done = run(env, "replay")
    assert done.returncode == 0, done.stderr
    assert "3 events delivered" in done.stderr
    assert [e["value"] for e in api_server.events_for("b1")] == [1, 2]
    assert api_server.events_for("b2")[0]["value"] is True
    assert spool.files() == []
    other = Spool(tmp_path / "elsewhere")
    other.write(Bucket("b3"), [("x", 0.5, NOW)], sink=api_server.url)
    assert run(env, "replay", str(other.directory)).returncode == 0
    assert api_server.events_for("b3")[0]["value"] == 0.5


def test_replay_of_legacy_missed_events(
    env: dict[str, str], api_server: ApiServer, tmp_path: Path
) -> None:
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
    done = run(env, "replay", "--bucket-key", "old-pi", str(missed))
    assert done.returncode == 0, done.stderr
    assert [(e["value"], e["epoch"]) for e in api_server.events_for("old-pi")] == [
        (20.5, NOW),
        (21, NOW + 60),
    ]


def test_replay_of_an_offline_csv(
    env: dict[str, str], api_server: ApiServer, tmp_path: Path
) -> None:
    """An offline-mode CSV, with or without its header, is sent with its types."""
    with_header = tmp_path / "out.csv"
    with_header.write_text(
        f"epoch,key,value\n{NOW},temp,21.5\n{NOW + 1},on,true\n{NOW + 2},word,hello\n"
    )
    bare = tmp_path / "bare.csv"
    bare.write_text(f"{NOW + 3},count,7\n")
    done = run(env, "--bucket-key", "csv", "replay", str(with_header), str(bare))
    assert done.returncode == 0, done.stderr
    assert [e["value"] for e in api_server.events_for("csv")] == [21.5, True, "hello", 7]


@pytest.mark.slow
def test_replay_exit_1_when_not_everything_was_delivered(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A replay that cannot reach the receiver exits 1, says so, and keeps the file."""
    server = ApiServer().start()
    spool = Spool(tmp_path / "spool")
    spool.write(Bucket("b1"), [("k", 1, NOW)], sink=server.url)
    server.stop()
    done = run(dict(env, ISSTREAMER_API_BASE=server.url), "replay", "--timeout", "1")
    assert done.returncode == 1
    assert "still in the spool" in done.stderr
    assert len(spool.files()) == 1
    missing = run(env, "replay", str(tmp_path / "nope.csv"))
    assert missing.returncode == 1 and "no such file" in missing.stderr
    no_bucket = run(
        env, "replay", str(tmp_path / "spool" / spool.files()[0].name), str(_csv(tmp_path))
    )
    assert no_bucket.returncode == 2 and "bucket key" in no_bucket.stderr


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "one.csv"
    path.write_text(f"{NOW},k,1\n")
    return path


@pytest.mark.slow
def test_spool_lists_shows_and_purges(
    env: dict[str, str], api_server: ApiServer, tmp_path: Path
) -> None:
    """spool summarises files and quarantine, show prints one file, purge needs --yes (no tty)."""
    spool = Spool(tmp_path / "spool")
    first = spool.write(
        Bucket("b1"), [("k", 1, NOW), ("k", 2, NOW)], sink=api_server.url, last_error="503 busy"
    )
    spool.write(Bucket("b1"), [("k", 3, NOW)], sink=api_server.url, last_error="cannot reach")
    spool.quarantine_batch(
        Bucket("b1"), [("bad", 1, NOW)], sink=api_server.url, reason="400: bad value"
    )
    listed = run(env, "spool")
    assert listed.returncode == 0, listed.stderr
    assert "2 files, 3 events" in listed.stdout and "last error: cannot reach" in listed.stdout
    assert "quarantine: 1 file, 1 event" in listed.stdout
    long = run(env, "spool", "list", "-l")
    assert first.name in long.stdout and "503 busy" in long.stdout
    assert "400: bad value" in run(env, "spool", "list", "--quarantine").stdout
    shown = run(env, "spool", "show", first.name)
    assert shown.returncode == 0 and "bucket       b1" in shown.stdout and "k = 2" in shown.stdout
    assert run(env, "spool", "show", "nope.json").returncode == 1
    refused = run(env, "spool", "purge")
    assert refused.returncode == 1 and "--yes" in refused.stderr and len(spool.files()) == 2
    assert run(env, "spool", "purge", "--yes", "--all").returncode == 0
    assert spool.files() == [] and not list((spool.directory / QUARANTINE).iterdir())


@pytest.mark.slow
def test_config_never_shows_the_key(env: dict[str, str], tmp_path: Path) -> None:
    """config shows every setting and where it came from, but never the access key itself."""
    ini = tmp_path / "isstreamer.ini"
    ini.write_text(f"[isstreamer.client_config]\naccess_key = {SECRET}\nbucket_key = from-ini\n")
    environ = {k: v for k, v in env.items() if k != "ISSTREAMER_ACCESS_KEY"}
    for args in (("config",), ("-vv", "config", "show"), ("--config", str(ini), "config")):
        done = run(dict(environ, ISSTREAMER_CONFIG=str(ini)), *args)
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout + done.stderr
        assert "ist_" in done.stdout and "from-ini" in done.stdout and f"ini ({ini})" in done.stdout
    from_env = run(dict(env, ISSTREAMER_ACCESS_KEY=SECRET), "config")
    assert (
        SECRET not in from_env.stdout and "environment (ISSTREAMER_ACCESS_KEY)" in from_env.stdout
    )


@pytest.mark.slow
def test_config_never_shows_credentials_in_api_base(env: dict[str, str]) -> None:
    """config shows api_base with its password and accessKey query value redacted."""
    url = f"redis://:{SECRET}@127.0.0.1:6379/0"
    done = run(dict(env, ISSTREAMER_API_BASE=url), "config")
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr and "127.0.0.1:6379" in done.stdout
    bad = run(env, "config", "init", "--api-base", f"ftp://u:{SECRET}@h/", stdin="k\n")
    assert bad.returncode == 2 and SECRET not in bad.stdout + bad.stderr


def test_config_init_writes_0600(env: dict[str, str], tmp_path: Path) -> None:
    """config init stores the key from stdin in the user config file, readable only by its owner."""
    done = run(
        env, "--bucket-key", "kitchen", "config", "init", "--access-key-stdin", stdin=SECRET + "\n"
    )
    assert done.returncode == 0, done.stderr
    ini = Path(os.environ["XDG_CONFIG_HOME"]) / "isstreamer" / "isstreamer.ini"
    assert stat.S_IMODE(ini.stat().st_mode) == 0o600
    text = ini.read_text()
    assert f"access_key = {SECRET}" in text and "bucket_key = kitchen" in text
    assert SECRET not in done.stdout + done.stderr
    shown = run({k: v for k, v in env.items() if k != "ISSTREAMER_ACCESS_KEY"}, "config")
    assert f"ini ({ini})" in shown.stdout
    no_key = run(env, "config", "init", stdin="")
    assert no_key.returncode == 2 and "--access-key-stdin" in no_key.stderr


@pytest.mark.slow
def test_metrics_once_sends_system_keys(env: dict[str, str], api_server: ApiServer) -> None:
    """`metrics --once` sends 10+ system keys, cpu and memory among them, to metrics-<host>."""
    done = run(env, "metrics", "--once")
    assert done.returncode == 0, done.stderr
    bucket = host_bucket_key("metrics")
    keys = {e["key"] for e in api_server.events_for(bucket)}
    assert len(keys) >= 10, keys
    assert {"cpu_total", "mem_percent", "load_1", "uptime_s", "process_count"} <= keys
    assert any(k.startswith("disk_root_") for k in keys)
    assert api_server.buckets[bucket].endswith(" metrics")


def test_metrics_sigterm_flushes_within_the_deadline(
    env: dict[str, str], api_server: ApiServer, tmp_path: Path
) -> None:
    """Samples held in memory are delivered on SIGTERM, and metrics exits 0 in time."""
    proc = start(
        env,
        "--config",
        str(holding_ini(tmp_path)),
        "-v",
        "metrics",
        "--interval",
        "0.2",
        "--bucket-key",
        "m",
        "--deadline",
        "5",
    )
    assert proc.stderr
    read_until(proc.stderr, "metrics: sample 1")
    assert api_server.events == []
    proc.send_signal(signal.SIGTERM)
    # The bound is the wait: its 5 s --deadline plus interpreter exit, generous on a busy
    # machine; no tighter clock.
    assert proc.wait(timeout=10) == 0
    assert "cpu_total" in {e["key"] for e in api_server.events_for("m")}
    assert "stopped by SIGTERM" in proc.stderr.read()


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


def test_serve_is_wired_to_the_collector(env: dict[str, str]) -> None:
    """`serve --help` shows the collector's own options."""
    done = run(env, "serve", "--help")
    assert done.returncode == 0 and "--port" in done.stdout and "--retention-days" in done.stdout


def test_help_never_imports_the_collector(env: dict[str, str]) -> None:
    """`isstreamer --help` loads no code of the collector; `serve --help` shows its defaults."""
    probe = (
        "import sys\n"
        "from isstreamer.cli import main\n"
        "for argv in (['--help'], ['serve', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    print(argv[0], 'isstreamer.collector' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, text=True, capture_output=True, timeout=60
    )
    assert done.stderr.split() == ["--help", "False", "serve", "True"]
    assert "(default: 64)" in " ".join(done.stdout.split())  # the collector's own limit


COMMANDS = [
    ["log", "k", "1"],
    ["pipe"],
    ["metrics"],
    ["replay"],
    ["spool"],
    ["spool", "list"],
    ["spool", "show", "f"],
    ["spool", "purge"],
    ["config"],
    ["config", "show"],
    ["config", "init"],
    ["relay"],
    ["serve"],
]
GLOBAL = [
    "-q",
    "-vv",
    "--config",
    "c.ini",
    "--spill-dir",
    "S",
    "--api-base",
    "http://h",
    "--bucket-key",
    "b",
    "--bucket-name",
    "B",
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_global_options_before_or_after_every_command(command: list) -> None:
    """Each global option means the same before the command and after it (actions included)."""
    for argv in (GLOBAL + command, command + GLOBAL):
        args = build_parser().parse_args(argv)
        got = (
            args.quiet,
            args.verbose,
            args.config,
            args.spill_dir,
            args.api_base,
            args.bucket_key,
            args.bucket_name,
        )
        assert got == (True, 2, "c.ini", "S", "http://h", "b", "B"), argv
        assert args.func is not None


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


def test_stop_signal_runs_callbacks_and_stops_once(tmp_path: Path) -> None:
    """SIGUSR1 runs its callback on the watcher thread; SIGTERM sets the stop and is named."""
    called = threading.Event()
    with StopSignal() as stop:
        assert stop.on(signal.SIGUSR1, called.set)
        os.kill(os.getpid(), signal.SIGUSR1)
        assert called.wait(10) and not stop.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(10) and stop.name == "SIGTERM"
        assert signal.getsignal(signal.SIGTERM) is not stop._handle  # a second one is fatal
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_stop_signal_off_the_main_thread_only_stops_by_set() -> None:
    """Off the main thread no handler can be installed: StopSignal still works by set()."""
    seen: list = []

    def body() -> None:
        with StopSignal() as stop:
            seen.append(stop.on(signal.SIGUSR1, lambda: None))
            stop.set()
            seen.append(stop.wait(1))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(30)
    assert seen == [False, True]


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_spool_commands_with_untrusted_and_old_files(
    env: dict[str, str], api_server: ApiServer, tmp_path: Path
) -> None:
    """spool list/show never block on a FIFO, read old names, and show the time a name carries."""
    spool = Spool(tmp_path / "spool")
    new = spool.write(Bucket("b1"), [("k", 1, NOW)], sink=api_server.url, created=NOW)
    old = spool.directory / "20200101T000000.000000-0123456789ab-n1.json"
    old.write_bytes(new.read_bytes())
    fifo = spool.directory / "s00000000000000000099-20200101T000000.000000-abc-n5.json"
    os.mkfifo(fifo)
    long = run(env, "spool", "list", "-l")
    assert long.returncode == 0, long.stderr
    assert "2 files, 2 events" in long.stdout and fifo.name not in long.stdout
    assert long.stdout.index(old.name) < long.stdout.index(new.name)  # the old name sorts first
    assert "2020-01-01 00:00:00 UTC" in long.stdout and "2026-09-21" in long.stdout
    shown = run(env, "spool", "show", fifo.name)
    assert shown.returncode == 1 and "not a regular file" in shown.stderr
    assert run(env, "spool", "show", old.name).returncode == 0
