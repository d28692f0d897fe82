"""`isstreamer completion` (isstreamer/cli/completion.py): scripts generated from the parser,
run in the real shells (zsh and fish when installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from isstreamer.cli import build_parser, main
from isstreamer.cli.completion import table


def _script(shell: str, capsys: Any, tmp_path: Path) -> Path:
    assert main(["completion", shell]) == 0
    path = tmp_path / f"completion.{shell}"
    path.write_text(capsys.readouterr().out)
    return path


def _shell(*argv: str, cwd: Path) -> list[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=cwd, check=True)
    return done.stdout.split()


def test_the_table_follows_the_parser() -> None:
    """Every command and action is a path; its options and positional choices are offered."""
    levels = {level.path: level for level in table(build_parser()).levels}
    assert {"", "log", "metrics", "status", "spool", "spool list", "config init"} <= set(levels)
    assert {"log", "status", "completion", "serve"} <= set(levels[""].subcommands)
    assert {"--print", "--interval", "--config"} <= set(levels["metrics"].options)
    assert levels["completion"].choices == ["bash", "zsh", "fish"]
    assert "--quarantine" in levels["spool list"].options


def test_bash_completes_commands_options_and_files(capsys: Any, tmp_path: Path) -> None:
    """In bash: subcommands, a command's options, shell names, and file names after --config."""
    script = _script("bash", capsys, tmp_path)
    (tmp_path / "work" / "agent.ini").write_text("")

    def complete(*words: str) -> list[str]:
        line = " ".join(f'"{w}"' for w in words)
        return _shell(
            "bash",
            "-c",
            f'source "{script}"; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; '
            '_isstreamer; printf "%s\\n" "${COMPREPLY[@]}"',
            cwd=tmp_path / "work",
        )

    assert complete("isstreamer", "sp") == ["spool"]
    assert complete("isstreamer", "-q", "spool", "")[:3] == ["list", "show", "purge"]
    assert {"--print", "--interval", "--once"} <= set(complete("isstreamer", "metrics", "--"))
    assert complete("isstreamer", "completion", "") == ["bash", "zsh", "fish", "--help"]
    assert complete("isstreamer", "--config", "ag") == ["agent.ini"]
    assert complete("isstreamer", "metrics", "--interval", "") == []


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_offers_the_words_of_the_path(capsys: Any, tmp_path: Path) -> None:
    """In zsh (compadd recorded): the words of `spool list` after a global option."""
    script = _script("zsh", capsys, tmp_path)
    offered = _shell(
        "zsh",
        "-c",
        f'compdef() {{}}; source "{script}"; compadd() {{ print -l -- "$@" }}; _files() {{}}; '
        'words=(isstreamer -v spool list ""); CURRENT=5; _isstreamer',
        cwd=tmp_path,
    )
    assert {"--long", "--quarantine", "--json"} <= set(offered) and "purge" not in offered


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completes_subcommands_and_options(capsys: Any, tmp_path: Path) -> None:
    """In fish: the actions of `spool`, and the options of `metrics`."""
    script = _script("fish", capsys, tmp_path)

    def complete(line: str) -> list[str]:
        return _shell("fish", "-c", f'source "{script}"; complete -C "{line}"', cwd=tmp_path)

    assert complete("isstreamer spool ") == ["list", "purge", "show"]
    assert "--print" in complete("isstreamer metrics --")
