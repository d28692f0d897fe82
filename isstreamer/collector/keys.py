"""Where the collector keeps its database and its generated access key."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Union

import platformdirs

log = logging.getLogger("isstreamer.collector")

PathLike = Union[str, "os.PathLike[str]"]


def default_db_path() -> Path:
    """``<user data dir>/collector.db``, e.g. ``~/.local/share/isstreamer/collector.db``."""
    return Path(platformdirs.user_data_dir("isstreamer")) / "collector.db"


def key_file_path(db_path: PathLike) -> Path:
    """The key file that belongs to a database: same folder, same stem, ``.key``."""
    return Path(db_path).with_suffix(".key")


def read_key(path: PathLike) -> str:
    """The key stored in ``path``, or "" when there is none."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


def load_or_create_key(path: PathLike) -> tuple[str, bool]:
    """Return (key, created): reuse the key in ``path`` or write a new one there, mode 0600."""
    path = Path(path)
    key = read_key(path)
    if key:
        if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("key file %s is readable by other users; chmod 600 it", path)
        return key, False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_hex(16)
    # Written in full under a temporary name, then linked into place: link fails if another
    # process got there first, and a reader never sees a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(key + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return read_key(path), False
        except OSError:  # file systems without hard links (FAT on an SD card)
            os.replace(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    return key, True
