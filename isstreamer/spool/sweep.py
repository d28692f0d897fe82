"""Temp files left in a spool by writers that died, sorted out when a Spool first looks.

A writer holds a lock on its temp file until it is renamed into place, so a locked temp
file is still being written and is left alone. An unlocked one that decodes as a whole spill
document, with as many events as its name says, was written in full (a kill between fsync and
rename): it is renamed into place and replayed like any other. An empty one is removed. A
partial one holds events its writer never reported as spilled: it is set aside in the
quarantine for a human, not deleted. Anything else under a temp name is removed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Callable

from . import names
from . import safe_io as sio
from .format import check_whole

log = logging.getLogger("isstreamer")

SetAside = Callable[[Path, str, str], object]  # (path, name in the quarantine, reason)


def sweep_tmp(directory: Path, listing: Iterable[str], set_aside: SetAside) -> None:
    for name in listing:
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        path = directory / name
        final = names.original_name(name[1 : -len(".tmp")])  # a claim's owner is gone too
        try:
            fd = sio.open_regular(path)
        except OSError:
            sio.remove(path)  # a symlink or odd file under a temp name: never ours
            continue
        try:
            if not sio.try_lock(fd):
                continue
            if os.fstat(fd).st_size == 0 or not names.is_spill_name(final):
                sio.remove(path)
                continue
            problem = check_whole(fd, names.event_count(Path(final)))
            if problem:
                set_aside(path, final, f"incomplete write left by a writer that died: {problem}")
            else:
                os.rename(path, directory / final)
                log.warning(
                    "spool: recovered %s, written in full by a process that died "
                    "before renaming it",
                    final,
                )
        except OSError as exc:
            log.warning("spool: cannot sweep %s: %s", name, exc)
        finally:
            os.close(fd)
