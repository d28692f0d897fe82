"""The project's wheel and sdist, built once per test run, and a local wheelhouse.

They live in pytest's temporary directory of the run, which only its owner can read (0700):
a test that installs as another user copies what it needs.

The wheelhouse holds the runtime dependencies (and setuptools, the build backend an sdist
install needs), rebuilt as wheels from what this test environment has installed: installs
in the tests run with `--no-index --find-links` and take seconds, without a network.
"""

from __future__ import annotations

import base64
import csv
import fcntl
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What pip needs to install the wheel (its requirements, transitively) or build the sdist.
NEEDED = ("requests", "tenacity", "platformdirs", "psutil", "setuptools")
# Files of an installed distribution that are about that installation, not its contents.
_INSTALL_ONLY = ("INSTALLER", "REQUESTED", "direct_url.json", "RECORD")
# What the checkout holds beside its sources: hidden files (.git, .venv, caches), build output.
_NOT_SOURCES = (".*", "build", "dist", "*.egg-info", "__pycache__")


@dataclass(frozen=True)
class Dists:
    """Paths of one build: the wheel, the sdist and the wheelhouse of their dependencies."""

    wheel: Path
    sdist: Path
    wheelhouse: Path

    def pip_env(self) -> dict[str, str]:
        """pip settings that install from the wheelhouse only."""
        return {
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(self.wheelhouse),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_CACHE_DIR": "1",
            "PIP_NO_COMPILE": "1",  # bytecode is the target's business; tests save the time
        }


_built: dict[str, Dists] = {}


def built(factory: pytest.TempPathFactory) -> Dists:
    """Build once per test run: the pytest-xdist workers of one run share the build (a lock)."""
    if "dists" in _built:
        return _built["dists"]
    base = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's directory, above each worker's own
    where = base / "isstreamer-dists"
    with open(base / "isstreamer-dists.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (where / "done").exists():
            shutil.rmtree(where, ignore_errors=True)
            where.mkdir()
            _build(where)
            (where / "done").write_text("")
    (wheel,) = (where / "dist").glob("*.whl")
    (sdist,) = (where / "dist").glob("*.tar.gz")
    _built["dists"] = Dists(wheel=wheel, sdist=sdist, wheelhouse=where / "wheelhouse")
    return _built["dists"]


def _need_build_tools() -> None:
    """python -m build and setuptools >= 77 (the test extra): skip without them, fail in CI."""
    try:
        metadata.version("build")
        setuptools = int(metadata.version("setuptools").split(".", 1)[0])
    except metadata.PackageNotFoundError:
        setuptools = 0
    if setuptools < 77:
        why = "build and setuptools>=77 are needed: pip install -e '.[test]'"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


def _build(where: Path) -> None:
    _need_build_tools()
    out = where / "dist"
    # A copy of the tree: the build writes its egg-info beside the sources, never in the checkout.
    source = where / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*_NOT_SOURCES))
    # --no-isolation: the build backend of this environment (the test extra has it), so the
    # build needs no network. python -m build makes the sdist, then the wheel from the sdist.
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"python -m build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    house = where / "wheelhouse"
    house.mkdir()
    for name in _requirements_closure(NEEDED):
        rebuild_wheel(metadata.distribution(name), house)
    shutil.rmtree(source)


def _requirements_closure(names: tuple[str, ...]) -> list[str]:
    """``names`` and what they require (no extras), as installed here."""
    seen: dict[str, None] = {}
    todo = list(names)
    while todo:
        name = _canonical(todo.pop())
        if name in seen:
            continue
        seen[name] = None
        for requirement in metadata.requires(name) or []:
            if "extra ==" in requirement:
                continue
            if ";" in requirement and not _marker_holds(requirement.split(";", 1)[1]):
                continue
            todo.append(re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0])
    return list(seen)


def _marker_holds(marker: str) -> bool:
    from packaging.markers import Marker

    return Marker(marker).evaluate({"extra": ""})


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def rebuild_wheel(dist: metadata.Distribution, house: Path) -> Path:
    """A wheel holding what ``dist`` installed (its RECORD) in site-packages."""
    (metadata_file,) = [
        f for f in dist.files or [] if f.match("*.dist-info/METADATA") and len(f.parts) == 2
    ]
    info = Path(str(dist.locate_file(metadata_file))).parent
    site = info.parent
    wheel_meta = HeaderParser().parsestr((info / "WHEEL").read_text())
    tag = wheel_meta.get_all("Tag")[0]
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    target = house / f"{name}-{dist.version}-{tag}.whl"
    records: list[tuple[str, str, str]] = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as whl:
        for entry in dist.files or []:
            rel = entry.as_posix()
            path = site / rel
            # Scripts (../../bin) are made again from entry_points.txt; bytecode is compiled again.
            if rel.startswith("..") or "__pycache__" in rel or rel.endswith(".pyc"):
                continue
            if rel.startswith(info.name + "/") and rel.split("/", 1)[1] in _INSTALL_ONLY:
                continue
            if not path.is_file():
                continue
            data = path.read_bytes()
            whl.writestr(rel, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            records.append((rel, f"sha256={digest.decode()}", str(len(data))))
        record_name = f"{info.name}/RECORD"
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([*records, (record_name, "", "")])
        whl.writestr(record_name, buf.getvalue())
    return target


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would point pip or Python elsewhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "PYTHON", "ISSTREAMER_", "XDG_")) and k != "VIRTUAL_ENV"
    }
    env.update(extra)
    return env
