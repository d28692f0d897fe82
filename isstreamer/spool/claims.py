"""Who owns a claimed spill file: a lock held open, never a pid or a clock.

A sender locks a file (``flock``) and renames it to its claim name; it keeps the descriptor
open until the file is deleted, moved or renamed back. The kernel drops the lock when its
owner dies (``kill -9``, power cut, OOM killer included), so a claim whose lock can be taken
is a dead owner's and is taken over at once, and a locked one is never taken, whatever the
wall clock or the file times say. Pids get reused and clocks step; locks do neither.

A forked child inherits the parent's descriptors and with them a share of its locks: the
child closes its copies at fork, which leaves the parent's locks as they were.
"""

from __future__ import annotations

import os
import uuid
import weakref
from collections.abc import Iterable
from pathlib import Path

from . import names
from . import safe_io as sio


class ClaimLocks:
    """The claims one Spool holds, by claim name, each with the fd that holds its lock."""

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex[:8]
        self._held: dict[str, int] = {}
        _all.add(self)

    def take(self, path: Path) -> Path | None:
        """Lock and rename ``path`` to a claim name; None when another sender has it.

        OSError when the file is not a regular file or the spool refuses the rename.
        """
        try:
            fd = sio.open_regular(path)
        except FileNotFoundError:
            return None
        claimed = path.with_name(names.claim_name(path.name, os.getpid(), self.token))
        try:
            if not sio.try_lock(fd):
                os.close(fd)
                return None  # another sender is claiming it right now
            os.rename(path, claimed)
            if os.stat(claimed, follow_symlinks=False).st_ino != os.fstat(fd).st_ino:
                os.rename(claimed, path)  # the name went to another file after we opened it
                os.close(fd)
                return None
        except FileNotFoundError:
            os.close(fd)
            return None
        except OSError:
            os.close(fd)
            raise
        self._held[claimed.name] = fd
        return claimed

    def hold(self, name: str, fd: int) -> None:
        """Keep a claim this Spool wrote itself (its fd is locked already)."""
        self._held[name] = fd

    def fd(self, name: str) -> int | None:
        return self._held.get(name)

    def names(self) -> list[str]:
        return list(self._held)

    def drop(self, name: str) -> None:
        """Let go of a claim's lock (after its file was deleted, moved or renamed back)."""
        fd = self._held.pop(name, None)
        if fd is not None:
            os.close(fd)

    def take_over_dead(
        self, directory: Path, listing: Iterable[str]
    ) -> tuple[int, list[tuple[str, OSError]]]:
        """Rename back the claims nobody holds a lock on: (how many, [(name, error)])."""
        count, errors = 0, []
        for name in listing:
            claim = names.parse_claim(name)
            if claim is None or name in self._held:
                continue
            path = directory / name
            try:
                fd = sio.open_regular(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                errors.append((name, exc))
                continue
            try:
                if sio.try_lock(fd):  # its owner is gone: nobody else holds the lock
                    os.rename(path, directory / claim[0])
                    count += 1
            except FileNotFoundError:
                pass  # another process took it over first
            except OSError as exc:
                errors.append((name, exc))
            finally:
                os.close(fd)
        return count, errors

    def forget_in_child(self) -> None:
        for fd in self._held.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._held = {}


_all: weakref.WeakSet[ClaimLocks] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for claims in list(_all):
        claims.forget_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
