"""Which spill files a Spool holds: claim, give back, delete, set aside, take over (a mixin).

A claim is a lock (``flock``) on the file plus a rename to ``<name>.claim.<pid>.<token>``
(claims.py); the lock is what counts, so a claim whose owner died is taken over at once and a
held one never, whatever the clocks say. Files the spool does not trust go to the quarantine
with a reason. Nothing here raises on file-system trouble: it is logged once and kept in
``error``.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from . import names
from . import safe_io as sio
from .claims import ClaimLocks
from .quarantine import FAILED, Quarantine
from .selection import Selection

log = logging.getLogger("isstreamer")


class Ownership:
    """The claims and the quarantine of a Spool's directory."""

    directory: Path
    select: Selection | None
    _lock: threading.Lock
    _bytes_estimate: int | None
    _problems: sio.Problems
    _claims: ClaimLocks
    _quarantine: Quarantine
    _odd: set

    def _usable(self) -> bool:
        raise NotImplementedError  # Spool's: the directories checked, False when unusable

    @property
    def error(self) -> str:
        """The last file-system problem, "" when all is well."""
        return self._problems.last

    def _problem(self, area: str, what: str, exc: OSError) -> None:
        self._problems.report(area, what, exc)

    def _fine(self, area: str) -> None:
        self._problems.clear(area, f"spool {self.directory}: {area} works again")

    def claim(self, path: Path) -> Path | None:
        """Take a file for sending; None when another sender has it, it is gone or unusable."""
        if not self._usable():
            return None
        try:
            claimed = self._claims.take(path)
        except OSError as exc:
            if not os.path.lexists(path) or os.path.isfile(path) and not os.path.islink(path):
                self._problem("claiming", f"cannot claim spill files in {self.directory}", exc)
            else:
                self._set_aside(path, path.name, f"cannot be read as a spill file: {exc}")
            return None
        self._fine("claiming")
        return claimed

    def _drop(self, claimed: Path) -> None:
        self._claims.drop(claimed.name)

    def delete(self, claimed: Path) -> None:
        size = 0
        try:
            size = os.stat(claimed, follow_symlinks=False).st_size
            os.unlink(claimed)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._problem("deleting", f"cannot delete sent spill file {claimed}", exc)
        self._drop(claimed)
        with self._lock:
            if self._bytes_estimate is not None:
                self._bytes_estimate = max(0, self._bytes_estimate - size)

    def _rename_back(self, claimed: Path) -> None:
        try:
            os.rename(claimed, claimed.with_name(names.original_name(claimed.name)))
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._problem("releasing", f"cannot give back spill file {claimed}", exc)
        self._drop(claimed)

    def quarantine(self, path: Path, reason: str) -> Path:
        """Move a file aside for a human, with a .reason file beside it (never raises)."""
        name = names.original_name(path.name)
        if self.select is not None:
            self.select.quarantined(name)
        return self._set_aside(path, name, reason)

    def _set_aside(self, path: Path, name: str, reason: str) -> Path:
        self._odd.discard(name)
        if self._quarantine.move(path, name, reason) != FAILED:
            self._drop(path)  # when it failed, a claim stays held: this process won't send it
            with self._lock:
                self._bytes_estimate = None  # rescan on the next write
        return self._quarantine.directory / name

    def quarantined(self) -> list[Path]:
        """Files in the quarantine (regular ones only), oldest first."""
        return self._quarantine.files()

    def reclaim_stale(self, max_age: float = 0.0) -> int:
        """Take over claims of processes that are gone (their lock is free); returns how many.

        Also sets aside non-regular files named like spill files. ``max_age`` is ignored: a
        claim's age says nothing about its owner (clocks step; a Pi has no RTC).
        """
        if not self._usable():
            return 0
        try:
            listing = os.listdir(self.directory)
        except OSError as exc:
            self._problem("listing", f"cannot list spool {self.directory}", exc)
            return 0
        for name in listing:
            if name in self._odd:
                self._set_aside(self.directory / name, name, "not a regular file")
        count, errors = self._claims.take_over_dead(self.directory, listing)
        for name, error in errors:
            if os.path.lexists(self.directory / name) and not os.path.isfile(self.directory / name):
                self._set_aside(
                    self.directory / name,
                    names.original_name(name),
                    f"cannot be read as a spill file: {error}",
                )
            else:
                self._problem("claiming", f"cannot take over {name}", error)
        if count:  # a dead process may have been rewriting one of them
            self._delete_superseded()
        return count

    def _delete_superseded(self) -> None:
        try:
            stale = names.superseded(os.listdir(self.directory))
        except OSError as exc:
            self._problem("listing", f"cannot list spool {self.directory}", exc)
            return
        for name in stale:
            log.warning(
                "spool: %s was being rewritten when its process died; old copy removed", name
            )
            sio.remove(self.directory / name)

    def release_own_claims(self, keep: Path | None = None) -> None:
        """On close: give back every file this Spool still holds (but ``keep``)."""
        for name in self._claims.names():
            if keep is None or name != keep.name:
                self._rename_back(self.directory / name)
