"""What is waiting in a spool, for people: file details, lookups by name, raw JSON, purging.

Every read streams the file or goes through ``safe_io``: bounded memory, never through a
symlink, never blocking on a FIFO someone left under a spill file's name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import format as fmt
from . import safe_io as sio
from .format import CorruptSpillFile, SpillBatch
from .names import created_from_name, event_count
from .quarantine import QUARANTINE, reason_of
from .store import Spool

__all__ = [
    "created_at",
    "details",
    "events_in",
    "find",
    "peek",
    "purge",
    "raw_json",
    "reason_of",
    "size_bytes",
]


def peek(path: Path, max_events: int) -> tuple[SpillBatch, int]:
    """(batch with the first ``max_events`` events, events in all) of any spill file, in
    bounded memory; CorruptSpillFile when it is not one."""
    try:
        fd = sio.open_regular(path)
        try:
            return fmt.peek(fd, path, max_events)
        finally:
            os.close(fd)
    except OSError as exc:
        raise CorruptSpillFile(f"unreadable: {exc}") from None


def details(path: Path) -> tuple[str, str]:
    """(bucket key, last error) of one file, or ("?", why it cannot be read)."""
    try:
        batch, _ = peek(path, 0)
    except CorruptSpillFile as exc:
        return "?", f"unreadable: {exc}"
    return batch.bucket.key, batch.last_error


def created_at(path: Path) -> float | None:
    """When a file was written (seconds since 1970): from its name, else its mtime; None."""
    created = created_from_name(path.name)  # for people: the order is the sequence in the name
    if created is not None:
        return created
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return None


def size_bytes(path: Path) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def events_in(paths: Iterable[Path]) -> int:
    """Events in spill files, from their names (nothing is read)."""
    return sum(event_count(p) for p in paths)


def find(spool: Spool, name: str) -> Path | None:
    """A file given by path, by name in the spool, or by name in its quarantine; None."""
    for candidate in (
        Path(name).expanduser(),
        spool.directory / name,
        spool.directory / QUARANTINE / name,
    ):
        if os.path.lexists(candidate):  # the reader says why when it is not a regular file
            return candidate
    return None


def raw_json(path: Path) -> Any:
    """A file's JSON as it is; OSError or ValueError when it cannot be read as JSON."""
    fd = sio.open_regular(path)
    try:
        return json.loads(sio.read_fd(fd))
    finally:
        os.close(fd)


def purge(paths: list[Path]) -> None:
    """Delete spill or quarantined files, with the reasons beside them."""
    for path in paths:
        for victim in (path, path.with_name(path.name + ".reason")):
            try:
                victim.unlink()
            except FileNotFoundError:
                pass
