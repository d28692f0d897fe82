"""Shared fixtures: a local events API server, an environment with no real user state, and a
guard that fails any test whose output or log records show a test access key."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The suite starts hundreds of Python processes (the CLI, relays, children killed with -9) and
# pytest-xdist workers: with PYTHONDONTWRITEBYTECODE set, each one compiles the package (and
# pytest rewrites every test module) again, a third of the suite's CPU time. Bytecode caches go
# to __pycache__/, which git ignores. Set before the workers and any child process start.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

import pytest  # noqa: E402
from apiserver import DEFAULT_ACCESS_KEY, ApiServer  # noqa: E402

# The Redis Cluster fixtures (module-scoped) live here so that test modules take them by name
# without importing them (an import a parameter would shadow).
from rediscluster import clean_cluster, cluster  # noqa: E402, F401

ACCESS_KEY = "test-access-key"
# Module-scoped fixtures that take seconds to build (a real install, a Redis Cluster, an inner
# pytest run, headless Chromium): every test that uses one is slow, whichever runs first.
SLOW_FIXTURES = frozenset(
    {"started", "installed", "user_installed", "inner_run", "cluster", "clean_cluster", "browser"}
)
# Keys no output may show in full; their redacted forms (e.g. "…ey") are fine.
SECRET_KEYS = frozenset({ACCESS_KEY, DEFAULT_ACCESS_KEY})


# The files that take longest, longest first (seconds on one of four workers, measured on the
# 2-core machine): pytest-xdist hands out whole files in collection order
# (--no-loadscope-reorder), so a long one never starts near the end and holds up the run.
LONGEST_FILES = (
    "test_install.py",  # 17: real venvs and pip installs
    "test_delivery.py",  # 17
    "test_redis_sink.py",  # 17: a real Redis Cluster
    "test_relay.py",  # 15
    "test_collector.py",  # 12
    "test_relay_source.py",  # 10
    "test_examples.py",  # 9.5: one waits out a 5 s Redis BLOCK
    "test_dashboard.py",  # 9.4: headless Chromium
    "test_packaging.py",  # 8.6: builds a wheel and an sdist
    "test_initialstate_sink.py",  # 8
    "test_collector_local.py",  # 6.5
    "test_bench.py",  # 6.3
    "test_spool.py",  # 6.3
    "test_worker.py",  # 6.3
    "test_key_guard.py",  # 5.8
    "test_v3io_sink.py",  # 5.6
    "test_streamer.py",  # 5.1
)


def pytest_configure(config: pytest.Config) -> None:
    """In the controller of a pytest-xdist run: rewrite the test modules' asserts once, before
    the workers start, so that they load pytest's cached rewrite instead of each making its own.
    In a fresh checkout four workers rewriting 60 modules at once cost about 5 s of the run."""
    if os.environ.get("PYTEST_XDIST_WORKER") or not getattr(config.option, "numprocesses", 0):
        return
    try:
        _rewrite_test_modules(config)
    except Exception:  # pytest's internals moved: the workers rewrite for themselves, as usual
        pass


def _rewrite_test_modules(config: pytest.Config) -> None:
    # pytest's own cache of rewritten modules (its private API, hence the guard above).
    from _pytest.assertion import rewrite

    state = config.stash.get(rewrite.assertstate_key, None)
    if state is None or sys.dont_write_bytecode:  # --assert=plain, or no caches to write
        return
    for source in sorted(Path(__file__).parent.glob("test_*.py")):
        cache_dir = rewrite.get_cache_dir(source)
        pyc = cache_dir / (source.name[:-3] + rewrite.PYC_TAIL)
        if rewrite._read_pyc(source, pyc, state.trace) is not None:
            continue
        source_hash, code = rewrite._rewrite_test(source, config)
        if rewrite.try_makedirs(cache_dir):
            rewrite._write_pyc(state, code, source_hash, pyc)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `slow` the tests that need a slow module fixture (the rest carry the marker), and
    run the longest files first."""
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    rank = {name: position for position, name in enumerate(LONGEST_FILES)}
    # Stable: within a file, and among the other files, the order stays as collected.
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FILES)))


@pytest.fixture
def stop_embedded_collectors() -> Iterator[None]:
    """Stop what local_collector started in this process, so tests stay independent."""
    yield
    from isstreamer.collector import local

    for started in local._started.values():
        started.stop()
    local._started.clear()


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


class _LeakCatcher(logging.Handler):
    """Sees every record any logger emits during a test; remembers those showing a key."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)  # message, arguments and any traceback
        except Exception:  # a record that cannot be formatted is the test's business
            return
        if _shows_a_key(text):
            self.leaks.append(
                f"log record {record.name} {record.levelname} "
                f"from {record.pathname}:{record.lineno}: {_masked(text)}"
            )


def _shows_a_key(text: str) -> bool:
    return any(key in text for key in SECRET_KEYS)


def _masked(text: str, limit: int = 300) -> str:
    # The failure report must not become the leak: show where, with the key cut out.
    for key in SECRET_KEYS:
        text = text.replace(key, "<KEY>")
    return text if len(text) <= limit else text[:limit] + "..."


@pytest.fixture(autouse=True)
def no_key_in_output(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Fail the test if its captured stdout/stderr or any log record shows a test access key.

    Looks at everything: records of every logger and level that was emitted, output pytest
    captured (also of subprocesses writing to the inherited stderr), output a test read
    itself with capsys/capfd.readouterr(), and output of child processes read through
    subprocess.run(capture_output=True) or Popen.communicate().
    """
    catcher = _LeakCatcher()
    root = logging.getLogger()
    root.addHandler(catcher)
    read: list[str] = []
    original = pytest.CaptureFixture.readouterr

    def readouterr(self: Any) -> Any:
        result = original(self)
        read.extend(str(part) for part in result)
        return result

    monkeypatch.setattr(pytest.CaptureFixture, "readouterr", readouterr)
    communicate = subprocess.Popen.communicate

    def child_output(self: subprocess.Popen, *args: Any, **kwargs: Any) -> Any:
        result = communicate(self, *args, **kwargs)  # what subprocess.run(capture_output) reads
        for part in result:
            if part:
                read.append(part.decode(errors="replace") if isinstance(part, bytes) else part)
        return result

    monkeypatch.setattr(subprocess.Popen, "communicate", child_output)
    try:
        yield
    finally:
        root.removeHandler(catcher)
    leaks = list(catcher.leaks)
    leaks += [
        f"output read with readouterr() or from a child process: {_masked(text)}"
        for text in read
        if _shows_a_key(text)
    ]
    for when, name, text in getattr(request.node, "_report_sections", []):
        if _shows_a_key(text):
            leaks.append(f"captured {name} during {when}: {_masked(text)}")
    if leaks:
        pytest.fail("a test access key was shown in full:\n" + "\n".join(leaks), pytrace=False)


@pytest.fixture
def unwritable_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nothing can be written in: a read-only tmpfs when mounting is allowed
    (root), else a path below a regular file, where every create fails with an OSError."""
    import subprocess

    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode == 0:
        try:
            yield mount
        finally:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        return
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    yield blocker / "spool"
