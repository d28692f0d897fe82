"""Shared fixtures: a local events API server and an environment with no real user state."""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apiserver import ApiServer

ACCESS_KEY = "test-access-key"


@pytest.fixture
def api_server() -> Iterator[ApiServer]:
    """A started ApiServer on a free port, accepting ACCESS_KEY; stopped after the test."""
    with ApiServer(access_keys=(ACCESS_KEY,)) as server:
        yield server


@pytest.fixture
def make_streamer(api_server: ApiServer, tmp_path: Path) -> Iterator[Any]:
    """Build Streamers aimed at api_server with a tmp spool; all are closed after the test."""
    from isstreamer import Streamer

    made: list = []

    def build(**kwargs: Any) -> Streamer:
        kwargs.setdefault("access_key", ACCESS_KEY)
        kwargs.setdefault("api_base", api_server.url)
        kwargs.setdefault("bucket_key", "bucket-1")
        kwargs.setdefault("spill_dir", str(tmp_path / "spool"))
        streamer = Streamer(**kwargs)
        made.append(streamer)
        return streamer

    yield build
    for streamer in made:
        streamer.close(timeout=2)


@pytest.fixture
def access_key() -> str:
    """The key the api_server fixture accepts."""
    return ACCESS_KEY


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point HOME, XDG dirs and cwd into tmp_path so no real config or spool leaks in or out."""
    home = tmp_path / "home"
    dirs = {
        "HOME": home,
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_DATA_HOME": home / ".local" / "share",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_STATE_HOME": home / ".local" / "state",
    }
    for name, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(name, str(path))
    for name in list(os.environ):
        if name.startswith("ISSTREAMER_"):
            monkeypatch.delenv(name)
    # A proxy in the developer's environment would otherwise swallow requests to 127.0.0.1.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)

    logger = logging.getLogger("isstreamer")
    saved = (logger.level, list(logger.handlers), logger.propagate, logger.disabled)
    yield
    # Code under test may configure the logger (debug_level, CLI -v); later tests must not see it.
    for handler in logger.handlers:
        if handler not in saved[1]:
            handler.close()
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]
    logger.propagate, logger.disabled = saved[2], saved[3]


@pytest.fixture
def unwritable_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nothing can be written in: a read-only tmpfs when mounting is allowed
    (root), else a path below a regular file, where every create fails with an OSError."""
    import subprocess

    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode == 0:
        try:
            yield mount
        finally:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        return
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    yield blocker / "spool"
