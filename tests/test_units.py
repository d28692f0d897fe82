"""The systemd units install.sh writes, checked by systemd-analyze (verify, security --offline).

The units come from `install.sh --print-unit`, the same text an install writes (test_install
compares the two). verify wants ExecStart= to be an executable, so the prefix gets a stand-in
`venv/bin/isstreamer`; nothing runs it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "install.sh"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
MAX_EXPOSURE = 3.5
SERVICES = ("metrics", "collector")
# A prefix with a space and a "%": ExecStart= quoting and specifier escaping are checked too.
ODD_PREFIX = "opt/isstreamer 1%"


def need_systemd_analyze() -> None:
    if not os.access(SYSTEMD_ANALYZE, os.X_OK):
        why = f"{SYSTEMD_ANALYZE} is missing (Debian: apt-get install systemd)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


def parse(text: str) -> dict[str, list[str]]:
    """``Section.Key`` -> its values, in order (a key may repeat)."""
    out: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, value = line.split("=", 1)
        out.setdefault(f"{section}.{key}", []).append(value)
    return out


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """(kind, service) -> unit file, for system and user units of both services."""
    base = tmp_path_factory.mktemp("units")
    prefix = base / ODD_PREFIX
    command = prefix / "venv" / "bin" / "isstreamer"
    command.parent.mkdir(parents=True)
    command.write_text("#!/bin/sh\nexit 0\n")
    command.chmod(0o755)
    home = base / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "ISSTREAMER_"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config dir"),
        XDG_DATA_HOME=str(home / "data%dir"),
        ISSTREAMER_SYSROOT=str(base / "root"),
    )
    made = {}
    for kind in ("system", "user"):
        (base / kind).mkdir()
        for service in SERVICES:
            proc = subprocess.run(
                [
                    "bash",
                    str(SCRIPT),
                    f"--{kind}",
                    "--prefix",
                    str(prefix),
                    "--print-unit",
                    service,
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert proc.returncode == 0, proc.stderr
            path = made[kind, service] = base / kind / f"isstreamer-{service}.service"
            path.write_text(proc.stdout)
    return made


def analyze(*args: str, user: bool = False, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SYSTEMD_LOG_COLOR="0")
    if user:
        # A user manager's paths come from XDG_RUNTIME_DIR; systemd-analyze wants one.
        runtime = cwd / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(runtime)
    return subprocess.run(
        [SYSTEMD_ANALYZE, *(["--user"] if user else []), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
    )


@pytest.mark.parametrize("kind", ["system", "user"])
def test_units_pass_systemd_analyze_verify(units: dict, kind: str) -> None:
    """systemd-analyze verify accepts both units, with nothing to say."""
    need_systemd_analyze()
    files = [units[kind, s] for s in SERVICES]
    proc = analyze("verify", *map(str, files), user=kind == "user", cwd=files[0].parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout + proc.stderr == ""


@pytest.mark.parametrize("service", SERVICES)
def test_system_units_exposure_is_at_most_3_5(units: dict, service: str) -> None:
    """systemd-analyze security --offline=true rates each system unit 3.5 or better."""
    need_systemd_analyze()
    path = units["system", service]
    proc = analyze("security", "--offline=true", str(path), cwd=path.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", proc.stdout)
    assert found, proc.stdout
    exposure = float(found.group(1))
    print(f"isstreamer-{service}.service exposure {exposure}", file=sys.stderr)
    assert exposure <= MAX_EXPOSURE, proc.stdout


@pytest.mark.parametrize("service", SERVICES)
def test_system_units_run_unprivileged_and_confined(units: dict, service: str) -> None:
    """A dynamic, capability-less user, a read-only system and private /tmp, /home, devices."""
    unit = parse(units["system", service].read_text())
    expected = {
        "User": ["isstreamer"],
        "DynamicUser": ["yes"],
        "StateDirectory": ["isstreamer"],
        "StateDirectoryMode": ["0700"],
        "UMask": ["0077"],
        "ProtectSystem": ["strict"],
        "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"],
        "PrivateDevices": ["yes"],
        "NoNewPrivileges": ["yes"],
        "CapabilityBoundingSet": [""],
        "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6"],
        "SystemCallFilter": ["@system-service", "~@privileged @resources"],
        "SystemCallArchitectures": ["native"],
    }
    for key, values in expected.items():
        assert unit.get(f"Service.{key}") == values, key
    assert unit["Install.WantedBy"] == ["multi-user.target"]


@pytest.mark.parametrize(
    ("kind", "service"), [(k, s) for k in ("system", "user") for s in SERVICES]
)
def test_restarts_stop_on_a_configuration_error(units: dict, kind: str, service: str) -> None:
    """Restarted on failure, never after exit 2; serve says when it is ready, metrics reloads."""
    unit = parse(units[kind, service].read_text())
    if service == "metrics":
        assert unit["Service.Type"] == ["exec"]
        assert unit["Service.ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    else:
        assert unit["Service.Type"] == ["notify"]  # READY=1 once it listens (sdnotify.py)
    assert unit["Service.Restart"] == ["on-failure"]
    assert unit["Service.RestartPreventExitStatus"] == ["2"]
    assert unit["Service.SyslogLevelPrefix"] == ["yes"]
    command = "metrics" if service == "metrics" else "serve"
    assert unit["Service.ExecStart"][0].endswith(f'/venv/bin/isstreamer" {command}')


@pytest.mark.parametrize("service", SERVICES)
def test_user_units_need_no_system_targets(units: dict, service: str) -> None:
    """User units start from default.target and never name network-online.target."""
    text = units["user", service].read_text()
    assert "network-online" not in text
    assert parse(text)["Install.WantedBy"] == ["default.target"]
    assert "DynamicUser" not in text and "ProtectSystem" not in text


def test_user_units_carry_the_installers_xdg_paths(units: dict) -> None:
    """A user unit passes the XDG directories the installer used, "%" escaped for systemd."""
    unit = parse(units["user", "metrics"].read_text())
    environment = unit["Service.Environment"]
    home = units["user", "metrics"].parents[1] / "home"
    assert f'"XDG_CONFIG_HOME={home}/config dir"' in environment
    assert f'"XDG_DATA_HOME={home}/data%%dir"' in environment


def test_metrics_unit_reads_the_config_the_installer_writes(units: dict) -> None:
    """The root-owned config reaches the metrics service as a credential it is pointed at."""
    unit = parse(units["system", "metrics"].read_text())
    config = (
        units["system", "metrics"].parents[1] / "root" / "etc" / "isstreamer" / "isstreamer.ini"
    )
    assert unit["Service.LoadCredential"] == [f"isstreamer.ini:{config}"]
    assert "ISSTREAMER_CONFIG=/run/credentials/%n/isstreamer.ini" in unit["Service.Environment"]
    assert "LoadCredential" not in units["system", "collector"].read_text()


def test_system_units_paths_are_the_agents_defaults(units: dict, tmp_path: Path) -> None:
    """With the units' XDG_DATA_HOME=%S the agent's spool and collector db are in the state dir."""
    for service in SERVICES:
        assert (
            "XDG_DATA_HOME=%S" in parse(units["system", service].read_text())["Service.Environment"]
        )
    code = (
        "from isstreamer.config import default_spill_dir\n"
        "from isstreamer.collector.keys import default_db_path, key_file_path\n"
        "db = default_db_path()\n"
        "print(default_spill_dir(), db, key_file_path(db))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(XDG_DATA_HOME="/var/lib", HOME="/")  # %S of a system unit; DynamicUser's HOME
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [
        "/var/lib/isstreamer/spool",
        "/var/lib/isstreamer/collector.db",
        "/var/lib/isstreamer/collector.key",
    ]


def test_metrics_starts_after_the_collector(units: dict) -> None:
    """metrics is ordered after the collector, so without a key it reuses the collector's."""
    for kind in ("system", "user"):
        after = parse(units[kind, "metrics"].read_text())["Unit.After"][0].split()
        assert "isstreamer-collector.service" in after
    system_metrics = parse(units["system", "metrics"].read_text())
    assert system_metrics["Unit.Wants"] == ["network-online.target"]
