"""The `isstreamer` command as a whole (isstreamer/cli/main.py): global options, help, and
exit statuses for bad command lines and configurations."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Cli, cli_fixture, env_fixture  # noqa: F401 (fixtures)

from isstreamer.cli import build_parser, main
from isstreamer.cli.main import setup_logging

COMMANDS = [
    ["log", "k", "1"],
    ["pipe"],
    ["metrics"],
    ["replay"],
    ["spool"],
    ["spool", "list"],
    ["spool", "show", "f"],
    ["spool", "purge"],
    ["status"],
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


BAD_VALUES = [
    ["metrics", "--interval", "0"],
    ["metrics", "--interval", "nan"],
    ["log", "k", "1", "--deadline", "-1"],
    ["pipe", "--deadline", "soon"],
    ["replay", "--timeout", "inf"],
    ["spool", "show", "f", "--events", "-1"],
    ["relay", "--batch", "0"],
    ["relay", "--stats-interval", "0"],
    ["serve", "--port", "70000"],
    ["serve", "--retention-days", "0"],
    ["completion", "tcsh"],
    ["no-such-command"],
]


@pytest.mark.parametrize("argv", BAD_VALUES, ids=" ".join)
def test_every_bad_option_value_exits_2(argv: list, capsys: Any) -> None:
    """A bad option value is a usage error: exit 2, one line naming the option, no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error: argument" in err or "invalid choice" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["log", "k", "1", "--epoch", "soon"], "event not sent"),
        (["log", "", "1"], "event not sent"),
        (["log", "k" * 251, "1"], "event not sent"),
    ],
    ids=["epoch", "empty key", "long key"],
)
def test_an_invalid_event_on_the_command_line_exits_2(cli: Cli, argv: list, words: str) -> None:
    """A time, key or value log cannot send is a wrong command line: exit 2, nothing sent."""
    done = cli(*argv)
    assert done.returncode == 2 and words in done.stderr


def test_config_problems_exit_2_without_traceback(cli: Cli, tmp_path: Path) -> None:
    """No key, a bad URL or a missing ini: exit 2 and one line that says what to do."""
    with_key = dict(os.environ)
    for args, key, words in (
        (("log", "t", "1"), False, "no access key"),
        (("--api-base", "ftp://x", "log", "t", "1"), True, "api_base"),
        (("--config", str(tmp_path / "missing.ini"), "config"), True, "does not exist"),
    ):
        if key:
            cli.setenv(ISSTREAMER_ACCESS_KEY=with_key["ISSTREAMER_ACCESS_KEY"])
        else:
            cli.delenv("ISSTREAMER_ACCESS_KEY")
        done = cli(*args)
        assert done.returncode == 2, done.stderr
        assert words in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_help_documents_the_exit_statuses(capsys: Any) -> None:
    """--help exits 0 and lists every exit status, 75 (kept in the spool) among them."""
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for status in ("0 done", "1 failed", "2 bad command line", "75 not delivered yet"):
        assert status in out
    assert main(["log", "--help"]) == 0
    assert "75 when it is only kept in the spool" in " ".join(capsys.readouterr().out.split())


def test_setup_logging_twice_keeps_one_handler() -> None:
    """Each main() run sets the log level and replaces its own handler instead of adding one."""
    logger = logging.getLogger("isstreamer")
    before = len(logger.handlers)
    setup_logging(0, False)
    setup_logging(2, False)
    assert len(logger.handlers) == before + 1 and logger.level == logging.DEBUG
    setup_logging(0, True)
    assert logger.level == logging.ERROR


def test_the_installed_script_exits_2_for_a_bad_value(env: dict[str, str]) -> None:
    """The console script (not only main()) gives the shell status 2 for --interval 0."""
    script = shutil.which("isstreamer", path=str(Path(sys.executable).parent))
    assert script is not None
    done = subprocess.run(
        [script, "metrics", "--interval", "0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "argument --interval: must be more than 0 seconds (got '0')" in done.stderr


def test_help_never_imports_the_collector(env: dict[str, str]) -> None:
    """`isstreamer --help` loads no code of the collector; `serve --help` shows its defaults."""
    probe = (
        "import sys\n"
        "from isstreamer.cli import main\n"
        "for argv in (['--help'], ['serve', '--help']):\n"
        "    main(argv)\n"
        "    print(argv[0], 'isstreamer.collector' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, text=True, capture_output=True, timeout=60
    )
    assert done.stderr.split() == ["--help", "False", "serve", "True"]
    assert "(default: 64)" in " ".join(done.stdout.split())  # the collector's own limit
