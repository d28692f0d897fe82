"""The status file a long-running agent (``isstreamer metrics``) keeps for ``isstreamer status``.

Where: in the spool directory, as ``.status-<command>-<pid>.json``. The spool is already
the state the agent and the ``status`` command share, configured once (``spill_dir``),
private (0700) and writable under a hardened unit; a file there needs no socket, no new
setting and no cooperation from an agent that hangs. The leading dot keeps it out of every
spool listing, and the name is no spill name, so replay never takes it for a batch.

How: rewritten whole (a temp file, then a rename: a reader never sees half a file), mode
0600, never through a symlink, at most every ``every_s`` seconds, so an agent sampling each
second costs an SD card one small write per half minute. No fsync: a status lost in a power
cut is rewritten at the next sample.

Liveness: the file says when it goes stale (``stale_after_s`` on the monotonic clock, which
every process of one boot shares). A reader believes it only while the pid exists, the boot
is the same and the file is fresh, so a dead agent's file, or its pid reused, is never
shown as running.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

from .spool import safe_io as sio
from .spool.format import BOOT_ID

log = logging.getLogger("isstreamer")

FORMAT = 1
PREFIX = ".status-"
EVERY_S = 30.0  # seconds between rewrites at most
STALE_FACTOR = 3  # missed rewrites before a file counts as stale
MAX_STATUS_BYTES = 1 << 20


def status_name(command: str, pid: int) -> str:
    return f"{PREFIX}{command}-{pid}.json"


class StatusFile:
    """The status file of this process; write() replaces it, remove() ends it."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        command: str,
        *,
        every_s: float = EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / status_name(command, os.getpid())
        self.command = command
        self.every_s = every_s
        self._clock = clock
        self._wall = wall
        self._started = wall()
        self._written_at: float | None = None
        self._broken = False  # reported once; later failures are debug lines

    def due(self) -> bool:
        return self._written_at is None or self._clock() - self._written_at >= self.every_s

    def write(self, payload: Mapping[str, Any], *, interval_s: float, force: bool = False) -> bool:
        """Replace the file with ``payload`` plus who and when, if due (or ``force``)."""
        if not (force or self.due()):
            return False
        now = self._clock()
        stale_after = STALE_FACTOR * max(self.every_s, interval_s)
        doc = {
            "format": FORMAT,
            "command": self.command,
            "pid": os.getpid(),
            "boot_id": BOOT_ID,
            "started": self._started,
            "updated": self._wall(),
            "updated_monotonic": now,
            "stale_after_s": stale_after,
            **payload,
        }
        try:
            sio.private_dir(self.directory, create=True)
            _replace(self.directory, self.path.name, json.dumps(doc).encode())
        except OSError as exc:
            level = logging.DEBUG if self._broken else logging.WARNING
            self._broken = True
            log.log(level, "cannot write the status file %s: %s", self.path, exc)
            return False
        self._written_at = now
        return True

    def remove(self) -> None:
        sio.remove(self.path)


def _replace(directory: Path, name: str, data: bytes) -> None:
    # Not safe_io.put(): a status file is not worth an fsync on every rewrite.
    tmp = directory / f".{name}.tmp"
    fd = sio.create_tmp(tmp)
    try:
        sio.write_fully(fd, data)
        os.replace(tmp, directory / name)  # replaces a symlink there, never follows it
    except BaseException:
        sio.remove(tmp)
        raise
    finally:
        os.close(fd)


def read_statuses(
    directory: str | os.PathLike[str], clock: Callable[[], float] = time.monotonic
) -> list[dict[str, Any]]:
    """Every status file in ``directory``, each with ``running`` (alive and fresh) added."""
    found = []
    try:
        names = sorted(n for n in os.listdir(directory) if n.startswith(PREFIX))
    except OSError:
        return []
    for name in names:
        if not name.endswith(".json"):
            continue
        doc = _read(Path(directory) / name)
        if doc is not None:
            doc["running"] = _running(doc, clock())
            found.append(doc)
    return found


def _read(path: Path) -> dict[str, Any] | None:
    try:
        fd = sio.open_regular(path)
    except OSError:
        return None  # gone meanwhile, or not a regular file: not a status
    try:
        doc = json.loads(sio.read_fd(fd, MAX_STATUS_BYTES))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    return doc if isinstance(doc, dict) and doc.get("format") == FORMAT else None


def _running(doc: Mapping[str, Any], now: float) -> bool:
    try:
        pid, updated, stale_after = int(doc["pid"]), doc["updated_monotonic"], doc["stale_after_s"]
        fresh = now - float(updated) <= float(stale_after)
    except (KeyError, TypeError, ValueError):
        return False
    return doc.get("boot_id") == BOOT_ID and fresh and _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM  # someone else's process: alive all the same
    return True
