"""The quarantine: files set aside for a human, each with a ``.reason`` file beside it.

Everything is moved or written by rename inside a 0700 directory that is never a symlink, so a
symlink planted at ``quarantine/<name>`` or ``<name>.reason`` is replaced, never followed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from . import safe_io as sio

log = logging.getLogger("isstreamer")

QUARANTINE = "quarantine"
MOVED, GONE, FAILED = "moved", "gone", "failed"


class Quarantine:
    """``<spool>/quarantine``; file-system trouble is reported to ``problems``, not raised."""

    def __init__(self, spool_dir: Path, problems: sio.Problems) -> None:
        self.directory = spool_dir / QUARANTINE
        self._problems = problems

    def move(self, path: Path, name: str, reason: str) -> str:
        """Move ``path`` in as ``name``: MOVED, GONE (nothing there) or FAILED (logged)."""
        try:
            sio.private_dir(self.directory, create=True)
            os.replace(path, self.directory / name)
        except FileNotFoundError:
            return GONE
        except OSError as exc:
            self._problems.report("quarantine", f"cannot quarantine {path.name} ({reason})", exc)
            return FAILED
        self._write_reason(name, reason)
        log.error("spill file %s quarantined: %s", name, reason)
        return MOVED

    def add(self, name: str, data: bytes, reason: str) -> Path:
        """Write a new file straight into the quarantine; OSError when that is impossible."""
        sio.private_dir(self.directory, create=True)
        sio.put(self.directory, name, data)
        self._write_reason(name, reason)
        return self.directory / name

    def _write_reason(self, name: str, reason: str) -> None:
        try:
            sio.put(self.directory, name + ".reason", (reason.rstrip() + "\n").encode())
        except OSError as exc:
            log.warning("cannot write the reason for quarantined %s: %s", name, exc)

    def files(self) -> list[Path]:
        """Regular files named ``*.json`` in the quarantine, by name (never raises)."""
        try:
            with os.scandir(self.directory) as it:
                found = [
                    e.name
                    for e in it
                    if e.name.endswith(".json") and e.is_file(follow_symlinks=False)
                ]
        except OSError:
            return []
        return [self.directory / n for n in sorted(found)]


def reason_of(path: Path) -> str:
    """The first line of a quarantined file's reason ("" when there is none)."""
    try:
        fd = sio.open_regular(path.with_name(path.name + ".reason"))
    except OSError:
        return ""
    try:
        text = sio.read_fd(fd, limit=4096).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    finally:
        os.close(fd)
    return text.splitlines()[0] if text else ""
