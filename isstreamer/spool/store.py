"""Spill files: batches that could not be delivered, kept on disk until they can be.

One JSON file per spilled batch (format in format.py, names in names.py), written
in full to a temp file, fsync'd and renamed into place, in a 0700 directory as 0600 files.
The access key is never written: replay takes it from the current configuration.

A sender *claims* a file by locking it (``flock``) and renaming it to
``<name>.claim.<pid>.<token>``; the lock is held until the file is deleted or given back. A
claim whose lock can be taken belongs to a process that is gone (the kernel drops the lock
when its owner dies, ``kill -9`` included) and is taken over at once; a locked claim is never
taken, whatever the clocks say.

Files the spool does not trust are set aside in ``quarantine/`` with a ``.reason`` file:
non-regular files named like spill files (a FIFO would block a reader), files that do not
decode, impossible metadata. File-system trouble never raises out of listing, claiming or
giving back: it is logged once and kept in ``Spool.error``; ``write()`` raises OSError only.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

from ..model import Bucket, Event
from . import format as fmt
from . import names
from . import safe_io as sio
from .claims import ClaimLocks
from .format import CorruptSpillFile, SpillBatch, decode_batch, encode_batch
from .ownership import Ownership
from .quarantine import QUARANTINE, Quarantine
from .quota import evict_oldest
from .selection import Selection
from .split import split_claimed, too_big
from .sweep import sweep_tmp

log = logging.getLogger("isstreamer")

DEFAULT_MAX_BYTES = 100 * 1024 * 1024


class Spool(Ownership):
    """A directory of spill files with a byte quota; ``select`` limits it to some files."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        max_bytes: int = DEFAULT_MAX_BYTES,
        on_evict: Callable[[int, int], None] | None = None,
        select: Selection | None = None,
    ) -> None:
        self.directory = Path(os.path.expanduser(directory))  # "~/spool" from an ini file
        self.max_bytes = int(max_bytes)
        self.select = select
        self._on_evict = on_evict  # called with (files, events) evicted
        self._lock = threading.Lock()
        self._bytes_estimate: int | None = None  # lazily scanned; own writes keep it current
        self._problems = sio.Problems()
        self._claims = ClaimLocks()
        self._quarantine = Quarantine(self.directory, self._problems)
        self._ready = False  # directories checked, stale temp files swept
        self._seq_floor = 0  # the highest sequence on disk when the spool was first used
        self._odd: set = set()  # non-regular entries seen by files(), quarantined by the next tidy

    # ---- the directories --------------------------------------------------------------------

    def ensure_dir(self) -> None:
        """Create the directory or make sure it is safe; OSError when it cannot be used."""
        self._prepare(create=True)

    def _prepare(self, create: bool) -> bool:
        """Check the directories once (and sweep stale temp files); False when there is none."""
        if self._ready:
            return True
        if not sio.private_dir(self.directory, create):
            return False
        qdir = self.directory / QUARANTINE
        if os.path.lexists(qdir):
            try:
                sio.private_dir(qdir, create=False)
            except OSError as exc:
                self._problem("quarantine", f"quarantine of {self.directory} unusable", exc)
        listing = os.listdir(self.directory)
        self._seq_floor = names.max_seq(listing)
        sweep_tmp(self.directory, listing, self._set_aside)
        self._ready = True
        self._fine("directory")
        return True

    def _usable(self) -> bool:
        """_prepare(create=False) for callers that must not raise."""
        try:
            return self._prepare(create=False)
        except OSError as exc:
            self._problem("directory", f"spool {self.directory} unusable", exc)
            return False

    # ---- writing --------------------------------------------------------------------------

    def write(
        self,
        bucket: Bucket,
        events: Sequence[Event],
        *,
        sink: str,
        attempts: int = 0,
        last_error: str = "",
        created: float | None = None,
        batch_id: str | None = None,
        order: str | None = None,
        boot_id: str | None = None,
        wall_minus_monotonic: float | None = None,
        name_id: str = "",
        account: bool = True,
    ) -> Path:
        """Write one batch durably; raises OSError (only) when that is impossible.

        ``order`` keeps a rewritten file's place in line (the sort prefix of its old name);
        ``boot_id`` and ``wall_minus_monotonic`` default to this process's. ``name_id`` is the
        id in the name (a rewrite keeps it; a split's parts get their own); ``account=False``
        skips the quota check.
        """
        created = time.time() if created is None else created
        data = self._encode(
            bucket,
            events,
            sink=sink,
            attempts=attempts,
            last_error=last_error,
            created=created,
            batch_id=batch_id,
            boot_id=boot_id,
            wall_minus_monotonic=wall_minus_monotonic,
        )
        try:
            final = self._write_new(data, created, len(events), order, name_id=name_id)
        except OSError as exc:
            self._problem("writing", f"cannot write spill files in {self.directory}", exc)
            raise
        self._fine("writing")
        if not account:
            return final
        try:
            self._account(len(data), exclude=final)
        except OSError as exc:  # the batch is safe on disk; only the quota check failed
            log.warning("spool quota check in %s failed: %s", self.directory, exc)
        return final

    @staticmethod
    def _encode(
        bucket: Bucket,
        events: Sequence[Event],
        *,
        sink: str,
        attempts: int,
        last_error: str,
        created: float,
        batch_id: str | None = None,
        boot_id: str | None = None,
        wall_minus_monotonic: float | None = None,
    ) -> bytes:
        try:
            return encode_batch(
                batch_id or uuid.uuid4().hex[:16],
                created,
                sink,
                bucket,
                events,
                attempts,
                last_error,
                fmt.BOOT_ID if boot_id is None else boot_id,
                fmt.wall_minus_monotonic()
                if wall_minus_monotonic is None
                else wall_minus_monotonic,
            )
        except Exception as exc:  # the caller counts an OSError as a loss; nothing else
            raise OSError(f"cannot encode a spill file: {type(exc).__name__}: {exc}") from exc

    def _write_new(
        self,
        data: bytes,
        created: float,
        count: int,
        order: str | None,
        claim: bool = False,
        name_id: str = "",
    ) -> Path:
        for retry in (False, True):
            try:
                self._prepare(create=True)
                if order is None:
                    seq = names.next_seq(self.directory, self._seq_floor)
                    order = names.order_for(seq, created)
                name = names.spill_name(order, name_id or uuid.uuid4().hex[:12], count)
                if claim:
                    name = names.claim_name(name, os.getpid(), self._claims.token)
                fd = sio.put(self.directory, name, data, hold=claim)
                if fd is not None:
                    self._claims.hold(name, fd)
                if self.select is not None:  # only rewrites and parts of selected files
                    self.select.follow(names.original_name(name))
                return self.directory / name
            except FileNotFoundError:  # the directory was removed under us: once more
                if retry:
                    raise
                self._ready = False
        raise AssertionError("unreachable")

    def _account(self, added: int, exclude: Path) -> None:
        with self._lock:
            if self._bytes_estimate is None:
                self._bytes_estimate = self.usage()[1]
            else:
                self._bytes_estimate += added
            if self._bytes_estimate <= self.max_bytes:
                return
            self._evict(exclude)

    def _evict(self, exclude: Path) -> None:
        """Delete the oldest unclaimed files until the spool fits its quota (lock held)."""
        files, events, self._bytes_estimate = evict_oldest(self.files(), exclude, self.max_bytes)
        if files:
            log.warning(
                "spool over its quota of %d bytes: evicted the %d oldest file(s), %d events lost",
                self.max_bytes,
                files,
                events,
            )
            if self._on_evict:
                self._on_evict(files, events)

    # ---- reading --------------------------------------------------------------------------

    def files(self) -> list[Path]:
        """Unclaimed spill files, oldest first (never raises: [] when the spool is unusable)."""
        if not self._usable():
            return []
        found = []
        try:
            with os.scandir(self.directory) as it:
                for entry in it:
                    if not names.is_spill_name(entry.name):
                        continue
                    if self.select is not None and not self.select.wants(entry.name):
                        continue
                    if entry.is_file(follow_symlinks=False):
                        found.append(entry.name)
                    else:
                        self._odd.add(entry.name)
        except OSError as exc:
            self._problem("listing", f"cannot list spool {self.directory}", exc)
            return []
        self._fine("listing")
        return [self.directory / n for n in sorted(found)]

    def usage(self) -> tuple[int, int]:
        """(files, bytes) of spill files including claimed ones, quarantine excluded."""
        count = size = 0
        if not self._usable():
            return 0, 0
        try:
            with os.scandir(self.directory) as it:
                for entry in it:
                    name = entry.name
                    if (
                        ".json" in name
                        and not name.startswith(".")
                        and entry.is_file(follow_symlinks=False)
                    ):
                        count += 1
                        size += entry.stat(follow_symlinks=False).st_size
        except OSError as exc:
            self._problem("listing", f"cannot list spool {self.directory}", exc)
        return count, size

    def load(self, claimed: Path) -> SpillBatch:
        """A claimed file's batch, at most LOAD_MAX_EVENTS events (bigger files are split)."""
        fd = self._claims.fd(claimed.name)
        try:
            own = fd is not None
            if fd is None:
                fd = sio.open_regular(claimed)
            try:
                size = os.fstat(fd).st_size
                if own and too_big(claimed, size):
                    batch = split_claimed(self, claimed, fd)
                else:
                    batch = decode_batch(claimed, sio.read_fd(fd))
            finally:
                if not own:
                    os.close(fd)
        except OSError as exc:
            raise CorruptSpillFile(f"unreadable: {exc}") from None
        return batch if self.select is None else self.select.adopt(batch)

    def release(
        self, batch: SpillBatch, remaining: Sequence[Event] | None = None, last_error: str = ""
    ) -> None:
        """Give a claimed file back, with fewer events if some were delivered."""
        attempts = batch.attempts + 1
        last_error = last_error or batch.last_error
        changed = remaining is not None and len(remaining) != len(batch.events)
        if not changed and last_error != batch.last_error:
            try:
                self._replace_claimed(batch, attempts, last_error)
            except OSError as exc:  # the file keeps its old last_error: nothing is lost
                self._problem("releasing", f"cannot update spill file {batch.path.name}", exc)
        elif changed:
            events = batch.events if remaining is None else remaining
            parsed = names.parse_name(names.original_name(batch.path.name))
            try:
                if events:
                    # A new name (the count changes) with the same order and id, then the old
                    # file goes: if the process dies between the two, whoever takes over its
                    # claims deletes the old copy (names.superseded).
                    self.write(
                        batch.bucket,
                        events,
                        sink=batch.sink,
                        attempts=attempts,
                        last_error=last_error,
                        created=batch.created,
                        batch_id=batch.id,
                        order=parsed.order if parsed else None,
                        boot_id=batch.boot_id,
                        wall_minus_monotonic=batch.wall_minus_monotonic,
                        name_id=parsed.id if parsed else "",
                    )
            except OSError as exc:
                # The whole file goes back instead: sent events may be sent again, none lost.
                log.error(
                    "cannot rewrite %s with its %d unsent events (%s); giving it back whole",
                    batch.path.name,
                    len(events),
                    exc,
                )
            else:
                self.delete(batch.path)
                return
        self._rename_back(batch.path)

    def _replace_claimed(self, batch: SpillBatch, attempts: int, last_error: str) -> None:
        """The same events with a new last_error, put over the claimed file in one rename.

        Killed at any point, this leaves one copy of the batch: the old file, the new one, or
        the new one as a whole temp file beside the old claim, which the next Spool renames
        into place (sweep.py) before the old claim is taken over onto the same name.
        """
        data = self._encode(
            batch.bucket,
            batch.events,
            sink=batch.sink,
            attempts=attempts,
            last_error=last_error,
            created=batch.created,
            batch_id=batch.id,
            boot_id=batch.boot_id,
            wall_minus_monotonic=batch.wall_minus_monotonic,
        )
        fd = sio.put(self.directory, batch.path.name, data, hold=True)
        self._drop(batch.path)  # the replaced file's lock; the new one is locked through fd
        if fd is not None:  # always, with hold=True
            self._claims.hold(batch.path.name, fd)

    def quarantine_batch(
        self, bucket: Bucket, events: Sequence[Event], *, sink: str, reason: str
    ) -> Path:
        """Write a batch the receiver rejected straight into the quarantine (OSError if not)."""
        created = time.time()
        data = self._encode(
            bucket, events, sink=sink, attempts=1, last_error=reason, created=created
        )
        self._prepare(create=True)
        order = names.order_for(names.next_seq(self.directory, self._seq_floor), created)
        return self._quarantine.add(
            names.spill_name(order, uuid.uuid4().hex[:12], len(events)), data, reason
        )
