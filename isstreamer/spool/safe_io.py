"""File-system primitives for the spool that never follow a symlink or block on a FIFO.

Every file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked to be a regular file;
directories are opened with ``O_NOFOLLOW`` and changed through that descriptor, so a name
swapped for a symlink is refused instead of followed. Writes go to a temp file that is
written in full (short writes are continued, a write of 0 bytes is a full disk), fsync'd and
renamed into place; when anything fails the temp file is removed.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
from pathlib import Path

from ..errors import IsStreamerError

log = logging.getLogger("isstreamer")

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeSpoolPath(IsStreamerError, OSError):
    """A spool path that is a symlink, not a directory, or shared with other users."""


def open_regular(path: Path, flags: int = _READ_FLAGS) -> int:
    """An fd of a regular file, never through a symlink; OSError for anything else (a FIFO...)."""
    mode = os.lstat(path).st_mode
    if not stat.S_ISREG(mode):  # never open a device or FIFO: opening alone can have effects
        raise OSError(errno.EINVAL, f"not a regular file ({kind(mode)})", str(path))
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"not a regular file ({kind(mode)})", str(path))
    except BaseException:
        os.close(fd)
        raise
    return fd


def kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    ):
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "an odd file"


def read_fd(fd: int, limit: int | None = None) -> bytes:
    """All of a file from its start (or its first ``limit`` bytes)."""
    chunks = []
    offset = 0
    while limit is None or offset < limit:
        want = 1 << 20 if limit is None else min(1 << 20, limit - offset)
        chunk = os.pread(fd, want, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def try_lock(fd: int) -> bool:
    """Take an exclusive flock without waiting; False when another open file holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def private_dir(directory: Path, create: bool) -> bool:
    """Make sure ``directory`` is a real directory that only we can enter; False when absent.

    A symlink is refused, not followed: chmod through it would change its target (a shared
    1777 directory, say). A directory of ours that others may enter is tightened to 0700; one
    owned by another user that others may write to is refused, never changed.
    """
    if create:
        directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(directory, PRIVATE_DIR)
        except FileExistsError:
            pass
    try:
        fd = os.open(directory, _DIR_FLAGS)
    except FileNotFoundError:
        if create:
            raise
        return False
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            what = "a symbolic link" if os.path.islink(directory) else "not a directory"
            raise UnsafeSpoolPath(
                exc.errno,
                f"spool directory {directory} is {what}; refusing to "
                "use it (point spill_dir at a real directory)",
            ) from None
        raise
    try:
        info = os.fstat(fd)
        mode = stat.S_IMODE(info.st_mode)
        if not mode & 0o077:
            return True
        if mode & stat.S_ISVTX:  # sticky: a directory meant to be shared, like /tmp
            raise UnsafeSpoolPath(
                errno.EPERM,
                f"spool directory {directory} is a shared "
                f"directory (mode {mode:o}); refusing to use or change it",
            )
        if info.st_uid != os.geteuid():
            if mode & 0o022:
                raise UnsafeSpoolPath(
                    errno.EPERM,
                    f"spool directory {directory} belongs to uid "
                    f"{info.st_uid} and others may write to it (mode "
                    f"{mode:o}); refusing to use it",
                )
            return True
        os.fchmod(fd, PRIVATE_DIR)
        log.warning(
            "spool directory %s was open to others (mode %o); made it 0700", directory, mode
        )
        return True
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    # The rename is durable across a power cut only once the directory entry is on disk.
    try:
        fd = os.open(directory, _DIR_FLAGS)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_fully(fd: int, data: bytes) -> None:
    """Write all of ``data``: continue short writes; a write that makes no progress is ENOSPC."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, "no space left: the write made no progress")
        view = view[written:]


def create_tmp(tmp: Path) -> int:
    """A new private temp file, locked while it is written (a sweep skips locked ones)."""
    fd = os.open(
        tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE
    )
    fcntl.flock(fd, fcntl.LOCK_EX)  # a new file nobody else can hold yet: never waits
    return fd


def put(directory: Path, name: str, data: bytes, hold: bool = False) -> int | None:
    """Write a file in full under ``name`` or not at all (temp file, fsync, rename).

    With ``hold`` the file's fd is returned, still locked (the caller owns it then).
    """
    final, tmp = directory / name, directory / f".{name}.tmp"
    fd = create_tmp(tmp)
    try:
        write_fully(fd, data)
        os.fsync(fd)
        os.replace(tmp, final)  # while locked, so a sweep never takes it for a dead one's
    except BaseException:
        os.close(fd)
        remove(tmp)
        raise
    fsync_dir(directory)
    if hold:
        return fd
    os.close(fd)
    return None


def remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.debug("cannot remove %s: %s", path, exc)


class Problems:
    """File-system problems by area, each logged once until that area works again.

    "Once" means once per area and cause (the errno text, not the file name): a full disk
    is one log line, not one per file the worker tries to write.
    """

    def __init__(self) -> None:
        self._by_area: dict[str, str] = {}
        self.last = ""

    def report(self, area: str, what: str, exc: OSError) -> None:
        why = exc.strerror or str(exc)
        if self._by_area.get(area) != why:
            log.error("%s: %s", what, exc)
        self._by_area[area] = why
        self.last = f"{what}: {exc}"

    def clear(self, area: str, note: str) -> None:
        if self._by_area.pop(area, None) is not None:
            log.info("%s", note)
            if not self._by_area:
                self.last = ""
