"""Packaging: `python -m build` makes a wheel and an sdist that install and run in a clean venv.

The build and the wheelhouse of dependencies are made once per test run (tests/builds.py);
each clean venv is made without pip and filled by this environment's pip (`--python`), from
the wheelhouse only, so an install takes a second or two and needs no network.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

import pytest
from builds import ROOT, Dists, built, clean_env

from isstreamer._version import __version__

RUNTIME_REQUIREMENTS = {"requests", "tenacity", "platformdirs", "psutil"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    return built(tmp_path_factory)


def wheel_metadata(dists: Dists) -> Message:
    with zipfile.ZipFile(dists.wheel) as whl:
        (name,) = [n for n in whl.namelist() if n.endswith(".dist-info/METADATA")]
        return HeaderParser().parsestr(whl.read(name).decode())


@pytest.fixture(scope="module")
def venvs(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two new venvs (no system site-packages): the wheel in one, the sdist in the other.

    Both pip runs go at once: the sdist's build and the wheel's install overlap.
    """
    base = tmp_path_factory.mktemp("clean-venvs")
    made: dict[str, Path] = {}
    running = []
    for kind, what in (("wheel", dists.wheel), ("sdist", dists.sdist)):
        venv = made[kind] = base / kind
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
        running.append(
            subprocess.Popen(
                [*pip, "-q", "--no-compile", str(what)],
                env=clean_env(**dists.pip_env()),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    for proc in running:
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output
    return made


def assert_runs(venv: Path, cwd: Path) -> None:
    """The venv's command and import work from a directory outside the checkout."""

    def run(*cmd: str) -> str:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=clean_env(), cwd=cwd, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    assert run(str(venv / "bin" / "isstreamer"), "--version") == f"isstreamer {__version__}"
    where = run(str(venv / "bin" / "python"), "-c", "import isstreamer; print(isstreamer.__file__)")
    assert Path(where).is_relative_to(venv)
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    installed = {p.name.split("-", 1)[0].lower() for p in venv.glob("lib/*/site-packages/*-info")}
    assert "isstreamer_agent" in installed
    # What the test extra brings never comes with a plain install.
    assert not installed & {"pytest", "hypothesis", "mypy", "ruff", "numpy", "build"}


def test_wheel_installs_and_runs_in_a_clean_venv(venvs: dict[str, Path], tmp_path: Path) -> None:
    """The built wheel installs in a fresh venv: `isstreamer --version` and the import work."""
    assert_runs(venvs["wheel"], tmp_path)


def test_sdist_installs_and_runs_in_a_clean_venv(venvs: dict[str, Path], tmp_path: Path) -> None:
    """The built sdist builds (in pip's isolated build env) and runs in a fresh venv."""
    assert_runs(venvs["sdist"], tmp_path)


def test_metadata_is_complete(dists: Dists) -> None:
    """The wheel says its licence, Python floor, classifiers and project URLs."""
    meta = wheel_metadata(dists)
    assert meta["Name"] == "isstreamer-agent"
    assert meta["Version"] == __version__
    assert meta["License-Expression"] == "MIT"
    assert meta["Requires-Python"] == ">=3.9"
    classifiers = meta.get_all("Classifier") or []
    assert "Operating System :: POSIX :: Linux" in classifiers
    assert "Programming Language :: Python :: 3.9" in classifiers
    assert "Typing :: Typed" in classifiers
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Source", "Issues"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values())
    assert "LICENSE" in (meta.get_all("License-File") or [])


def test_users_get_only_the_runtime_requirements(dists: Dists) -> None:
    """Unconditional requirements are the four runtime ones; the test tools need [test]."""
    requires = wheel_metadata(dists).get_all("Requires-Dist") or []
    plain = {r.split(">", 1)[0].split("=", 1)[0].strip() for r in requires if ";" not in r}
    assert plain == RUNTIME_REQUIREMENTS
    test_only = [r for r in requires if 'extra == "test"' in r]
    assert any(r.startswith("pytest") for r in test_only)
    assert any(r.startswith("build") for r in test_only)


def test_wheel_holds_the_package_and_its_data_only(dists: Dists) -> None:
    """The wheel has the package, its typing marker, the dashboard files and the licences."""
    with zipfile.ZipFile(dists.wheel) as whl:
        names = whl.namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"isstreamer", f"isstreamer_agent-{__version__}.dist-info"}
    for needed in (
        "isstreamer/py.typed",
        "isstreamer/collector/static/index.html",
        "isstreamer/collector/static/uPlot.LICENSE",
        f"isstreamer_agent-{__version__}.dist-info/licenses/LICENSE",
    ):
        assert needed in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert "isstreamer/journald.py" in names


def test_sdist_holds_what_a_build_needs(dists: Dists) -> None:
    """The sdist carries the metadata, the licence, the README and every package module."""
    with tarfile.open(dists.sdist) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    for needed in ("pyproject.toml", "setup.py", "LICENSE", "README.md", "PKG-INFO"):
        assert needed in names
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "isstreamer").rglob("*.py")}
    assert modules <= names


def test_license_file_is_mit() -> None:
    """LICENSE is the MIT licence the metadata declares."""
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text
