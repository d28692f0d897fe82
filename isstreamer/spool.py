"""Spill files: batches that could not be delivered, kept on disk until they can be.

One JSON file per spilled batch (format in spool_format.py, names in spool_names.py), written
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
import weakref
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from . import spool_io as sio
from . import spool_names as names
from .sinks.base import Bucket, Event
from .spool_format import (
    FORMAT_VERSION,
    CorruptSpillFile,
    EventStream,
    SpillBatch,
    batch_from,
    decode_batch,
    encode_batch,
    stream_parts,
)
from .spool_names import event_count

__all__ = ["Spool", "SpillBatch", "CorruptSpillFile", "event_count", "encode_batch",
           "decode_batch", "FORMAT_VERSION", "QUARANTINE", "DEFAULT_MAX_BYTES"]

log = logging.getLogger("isstreamer")

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
QUARANTINE = "quarantine"
# A loaded batch holds at most this many events from a file at most this large; bigger files
# are first split into parts of at most LOAD_MAX_EVENTS events and PART_BYTES of JSON.
LOAD_MAX_EVENTS = 20_000
LOAD_MAX_BYTES = 4 * 1024 * 1024
PART_BYTES = 1024 * 1024
_EVENT_OVERHEAD_BYTES = 30  # brackets, quotes, commas and an epoch around key and value
_BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
_all_spools: "weakref.WeakSet[Spool]" = weakref.WeakSet()


def boot_id() -> str:
    """This boot's id (Linux), "" when the system has none."""
    try:
        return _BOOT_ID_FILE.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


_BOOT_ID = boot_id()


def _wall_minus_monotonic() -> float:
    # Milliseconds are as precise as two clock readings in a row; fewer digits, steadier sizes.
    return round(time.time() - time.monotonic(), 3)


def _json_size(event: Event) -> int:
    return len(event[0]) + len(str(event[1])) + _EVENT_OVERHEAD_BYTES


class Spool:
    """A directory of spill files with a byte quota."""

    def __init__(self, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES,
                 on_evict: Optional[Callable[[int, int], None]] = None) -> None:
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self.error = ""  # the last file-system problem, "" when all is well
        self._on_evict = on_evict  # called with (files, events) evicted
        self._lock = threading.Lock()
        self._token = uuid.uuid4().hex[:8]
        self._bytes_estimate: Optional[int] = None  # lazily scanned; own writes keep it current
        self._held: Dict[str, int] = {}  # claim name -> fd holding its lock
        self._problems: Dict[str, str] = {}  # area -> message, each logged once
        self._ready = False  # directories checked, stale temp files swept
        self._seq_floor = 0  # the highest sequence on disk when the spool was first used
        self._odd: set = set()  # non-regular entries seen by files(), quarantined by the next tidy
        _all_spools.add(self)

    # ---- problems -------------------------------------------------------------------------

    def _problem(self, area: str, message: str) -> None:
        if self._problems.get(area) != message:
            log.error("%s", message)
        self._problems[area] = self.error = message

    def _fine(self, area: str) -> None:
        if self._problems.pop(area, None) is not None:
            log.info("spool %s: %s works again", self.directory, area)
            self.error = next(reversed(list(self._problems.values())), "")

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
                self._problem("quarantine", f"quarantine of {self.directory} unusable: {exc}")
        listing = os.listdir(self.directory)
        self._seq_floor = names.max_seq(listing)
        self._sweep_tmp(listing)
        self._ready = True
        self._fine("directory")
        return True

    def _usable(self) -> bool:
        """_prepare(create=False) for callers that must not raise."""
        try:
            return self._prepare(create=False)
        except OSError as exc:
            self._problem("directory", f"spool {self.directory} unusable: {exc}")
            return False

    def _sweep_tmp(self, listing: List[str]) -> None:
        """Temp files left by writers that died: recover complete ones, remove the rest.

        A writer holds a lock on its temp file until it is renamed, so a locked one is still
        being written. An unlocked one that decodes as a whole spill document was written in
        full (a kill between fsync and rename) and is renamed into place; a partial one holds
        events its writer never reported as spilled, and is set aside in the quarantine.
        """
        for name in listing:
            if not (name.startswith(".") and name.endswith(".tmp")):
                continue
            path = self.directory / name
            final = names.original_name(name[1:-len(".tmp")])
            try:
                fd = sio.open_regular(path)
            except OSError:
                sio.remove(path)  # a symlink or odd file under a temp name: never ours
                continue
            try:
                if not sio.try_lock(fd):
                    continue
                size = os.fstat(fd).st_size
                if size == 0 or not names.is_spill_name(final):
                    sio.remove(path)
                    continue
                problem = self._check_whole(fd, event_count(Path(final)))
                if problem:
                    self._set_aside(path, final, f"incomplete write left by a writer that "
                                    f"died: {problem}")
                else:
                    os.rename(path, self.directory / final)
                    log.warning("spool: recovered %s, written in full by a process that died "
                                "before renaming it", final)
            except OSError as exc:
                log.warning("spool: cannot sweep %s: %s", name, exc)
            finally:
                os.close(fd)

    @staticmethod
    def _check_whole(fd: int, expected: int) -> str:
        """"" when the file is a complete spill document with ``expected`` events."""
        try:
            stream = EventStream(fd)
            found = sum(1 for _ in stream.events())
        except (CorruptSpillFile, OSError) as exc:
            return str(exc)
        return "" if found == expected else f"{found} events where the name says {expected}"

    # ---- writing --------------------------------------------------------------------------

    def write(self, bucket: Bucket, events: Sequence[Event], *, sink: str, attempts: int = 0,
              last_error: str = "", created: Optional[float] = None,
              batch_id: Optional[str] = None, order: Optional[str] = None,
              boot_id: Optional[str] = None,
              wall_minus_monotonic: Optional[float] = None) -> Path:
        """Write one batch durably; raises OSError (only) when that is impossible.

        ``order`` keeps a rewritten file's place in line (the sort prefix of its old name);
        ``boot_id`` and ``wall_minus_monotonic`` default to this process's.
        """
        try:
            created = time.time() if created is None else created
            if wall_minus_monotonic is None:
                wall_minus_monotonic = _wall_minus_monotonic()
            data = encode_batch(batch_id or uuid.uuid4().hex[:16], created, sink, bucket, events,
                                attempts, last_error, _BOOT_ID if boot_id is None else boot_id,
                                wall_minus_monotonic)
        except Exception as exc:  # the caller counts an OSError as a loss; nothing else
            raise OSError(f"cannot encode a spill file: {type(exc).__name__}: {exc}") from exc
        try:
            final = self._write_new(data, created, len(events), order)
        except OSError as exc:
            self._problem("writing", f"cannot write spill files in {self.directory}: {exc}")
            raise
        self._fine("writing")
        try:
            self._account(len(data), exclude=final)
        except OSError as exc:  # the batch is safe on disk; only the quota check failed
            log.warning("spool quota check in %s failed: %s", self.directory, exc)
        return final

    def _write_new(self, data: bytes, created: float, count: int, order: Optional[str],
                   directory: Optional[Path] = None) -> Path:
        for retry in (False, True):
            try:
                self._prepare(create=True)
                if order is None:
                    seq = names.next_seq(self.directory, self._seq_floor)
                    order = names.order_for(seq, created)
                name = names.spill_name(order, uuid.uuid4().hex[:12], count)
                self._put(directory or self.directory, name, data)
                return (directory or self.directory) / name
            except FileNotFoundError:  # the directory was removed under us: once more
                if retry:
                    raise
                self._ready = False
        raise AssertionError("unreachable")

    @staticmethod
    def _put(directory: Path, name: str, data: bytes, hold: bool = False) -> Optional[int]:
        """Write a file in full under ``name``; with ``hold`` return its fd, still locked."""
        final, tmp = directory / name, directory / names.tmp_name(name)
        fd = sio.create_tmp(tmp)
        try:
            sio.write_fully(fd, data)
            os.fsync(fd)
            os.replace(tmp, final)  # while locked, so a sweep never takes it for a dead one's
        except BaseException:
            os.close(fd)
            sio.remove(tmp)
            raise
        sio.fsync_dir(directory)
        if hold:
            return fd
        os.close(fd)
        return None

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
        entries = []
        for path in self.files():
            if path != exclude:
                try:
                    entries.append((path, path.stat().st_size))
                except FileNotFoundError:
                    continue  # claimed by another sender meanwhile
        try:
            total = sum(size for _, size in entries) + exclude.stat().st_size
        except FileNotFoundError:
            total = sum(size for _, size in entries)
        files = events = 0
        for path, size in entries:
            if total <= self.max_bytes:
                break
            try:
                path.unlink()
            except FileNotFoundError:
                continue  # replayed by someone else meanwhile
            total -= size
            files += 1
            events += event_count(path)
        self._bytes_estimate = total
        if files:
            log.warning("spool over its quota of %d bytes: evicted the %d oldest file(s), "
                        "%d events lost", self.max_bytes, files, events)
            if self._on_evict:
                self._on_evict(files, events)

    # ---- reading --------------------------------------------------------------------------

    def files(self) -> List[Path]:
        """Unclaimed spill files, oldest first (never raises: [] when the spool is unusable)."""
        if not self._usable():
            return []
        found = []
        try:
            with os.scandir(self.directory) as it:
                for entry in it:
                    if not names.is_spill_name(entry.name):
                        continue
                    if entry.is_file(follow_symlinks=False):
                        found.append(entry.name)
                    else:
                        self._odd.add(entry.name)
        except OSError as exc:
            self._problem("listing", f"cannot list spool {self.directory}: {exc}")
            return []
        self._fine("listing")
        return [self.directory / n for n in sorted(found)]

    def usage(self) -> Tuple[int, int]:
        """(files, bytes) of spill files including claimed ones, quarantine excluded."""
        count = size = 0
        if not self._usable():
            return 0, 0
        try:
            with os.scandir(self.directory) as it:
                for entry in it:
                    name = entry.name
                    if ".json" in name and not name.startswith(".") and entry.is_file(
                            follow_symlinks=False):
                        count += 1
                        size += entry.stat(follow_symlinks=False).st_size
        except OSError as exc:
            self._problem("listing", f"cannot list spool {self.directory}: {exc}")
        return count, size

    def claim(self, path: Path) -> Optional[Path]:
        """Take a file for sending; None when another sender has it, it is gone or unusable."""
        if not self._usable():
            return None
        try:
            fd = sio.open_regular(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._set_aside(path, path.name, f"cannot be read as a spill file: {exc}")
            return None
        claimed = path.with_name(names.claim_name(path.name, os.getpid(), self._token))
        try:
            if not sio.try_lock(fd):
                os.close(fd)
                return None  # another sender is claiming it right now
            os.rename(path, claimed)
            if os.stat(claimed, follow_symlinks=False).st_ino != os.fstat(fd).st_ino:
                os.rename(claimed, path)  # the name was given to another file meanwhile
                os.close(fd)
                return None
        except OSError as exc:
            os.close(fd)
            if not isinstance(exc, FileNotFoundError):
                self._problem("claiming", f"cannot claim spill files in {self.directory}: {exc}")
            return None
        self._fine("claiming")
        self._held[claimed.name] = fd
        return claimed

    def _drop(self, claimed: Path) -> None:
        """Let go of a claim's lock (after the file was deleted, renamed back or moved)."""
        fd = self._held.pop(claimed.name, None)
        if fd is not None:
            os.close(fd)

    def load(self, claimed: Path) -> SpillBatch:
        """A claimed file's batch, at most LOAD_MAX_EVENTS events (bigger files are split)."""
        fd = self._held.get(claimed.name)
        try:
            own = fd is not None
            if fd is None:
                fd = sio.open_regular(claimed)
            try:
                size = os.fstat(fd).st_size
                if own and (size > LOAD_MAX_BYTES or event_count(claimed) > LOAD_MAX_EVENTS):
                    return self._split(claimed, fd)
                data = sio.read_fd(fd)
            finally:
                if not own:
                    os.close(fd)
        except OSError as exc:
            raise CorruptSpillFile(f"unreadable: {exc}") from None
        return decode_batch(claimed, data)

    def peek(self, path: Path, max_events: int) -> Tuple[SpillBatch, int]:
        """(batch with the first ``max_events`` events, events in all) of any file, read
        in bounded memory; CorruptSpillFile when it is not a spill file."""
        try:
            fd = sio.open_regular(path)
        except OSError as exc:
            raise CorruptSpillFile(f"unreadable: {exc}") from None
        try:
            stream = EventStream(fd)
            first: List[Event] = []
            total = 0
            for event in stream.events():
                if total < max_events:
                    first.append(event)
                total += 1
        except OSError as exc:
            raise CorruptSpillFile(f"unreadable: {exc}") from None
        finally:
            os.close(fd)
        return batch_from(path, stream.header, first), total

    def _split(self, claimed: Path, fd: int) -> SpillBatch:
        """Cut a huge claimed file into normal ones (a streaming parse); load the first."""
        parsed = names.parse_name(names.original_name(claimed.name))
        written: List[Path] = []
        first: Optional[Tuple[Path, List[Event]]] = None
        try:
            header, parts = stream_parts(fd, LOAD_MAX_EVENTS, PART_BYTES, _json_size)
            order = parsed.order if parsed else None
            common = dict(sink=header["sink"], attempts=header.get("attempts", 0),
                          last_error=header.get("last_error", ""), created=header["created"],
                          batch_id=header["id"], boot_id=header.get("boot_id", ""),
                          wall_minus_monotonic=header.get("wall_minus_monotonic"))
            bucket = Bucket(header["bucket_key"], header.get("bucket_name", ""))
            for index, events in enumerate(parts):
                if first is None:  # the first part stays claimed: no other sender can take it
                    first = (self._write_claimed(bucket, events, order, common), events)
                    written.append(first[0])
                else:
                    written.append(self.write(bucket, events, order=order, **common))
        except (CorruptSpillFile, OSError) as exc:
            for path in written:
                self._drop(path)
                sio.remove(path)
            if isinstance(exc, CorruptSpillFile):
                raise
            raise CorruptSpillFile(f"too large to load at once ({event_count(claimed)} events) "
                                   f"and no room to split it: {exc}") from None
        log.info("spool: split %s (%d events) into %d files", claimed.name, event_count(claimed),
                 len(written))
        self.delete(claimed)
        if first is None:
            raise CorruptSpillFile("no events")
        return decode_batch(first[0], sio.read_fd(self._held[first[0].name]))

    def _write_claimed(self, bucket: Bucket, events: List[Event], order: Optional[str],
                       common: dict) -> Path:
        data = encode_batch(common["batch_id"], common["created"], common["sink"], bucket, events,
                            common["attempts"], common["last_error"], common["boot_id"],
                            common["wall_minus_monotonic"])
        if order is None:
            order = names.order_for(names.next_seq(self.directory, self._seq_floor),
                                    common["created"])
        name = names.spill_name(order, uuid.uuid4().hex[:12], len(events))
        claimed = names.claim_name(name, os.getpid(), self._token)
        fd = self._put(self.directory, claimed, data, hold=True)
        assert fd is not None
        self._held[claimed] = fd
        return self.directory / claimed

    def delete(self, claimed: Path) -> None:
        size = 0
        try:
            size = os.stat(claimed, follow_symlinks=False).st_size
            os.unlink(claimed)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._problem("deleting", f"cannot delete sent spill file {claimed}: {exc}")
        self._drop(claimed)
        with self._lock:
            if self._bytes_estimate is not None:
                self._bytes_estimate = max(0, self._bytes_estimate - size)

    def release(self, batch: SpillBatch, remaining: Optional[Sequence[Event]] = None,
                last_error: str = "") -> None:
        """Give a claimed file back, with fewer events if some were delivered."""
        attempts = batch.attempts + 1
        last_error = last_error or batch.last_error
        changed = remaining is not None and len(remaining) != len(batch.events)
        if changed or last_error != batch.last_error:
            events = batch.events if remaining is None else remaining
            parsed = names.parse_name(names.original_name(batch.path.name))
            try:
                if events:
                    self.write(batch.bucket, events, sink=batch.sink, attempts=attempts,
                               last_error=last_error, created=batch.created, batch_id=batch.id,
                               order=parsed.order if parsed else None, boot_id=batch.boot_id,
                               wall_minus_monotonic=batch.wall_minus_monotonic)
            except OSError as exc:
                # The whole file goes back instead: sent events may be sent again, none lost.
                log.error("cannot rewrite %s with its %d unsent events (%s); giving it back "
                          "whole", batch.path.name, len(events), exc)
            else:
                self.delete(batch.path)
                return
        self._rename_back(batch.path)

    def _rename_back(self, claimed: Path) -> None:
        try:
            os.rename(claimed, claimed.with_name(names.original_name(claimed.name)))
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._problem("releasing", f"cannot give back spill file {claimed}: {exc}")
        self._drop(claimed)

    def quarantine(self, path: Path, reason: str) -> Path:
        """Move a file aside for a human, with a .reason file beside it (never raises)."""
        return self._set_aside(path, names.original_name(path.name), reason)

    def _set_aside(self, path: Path, name: str, reason: str) -> Path:
        qdir = self.directory / QUARANTINE
        target = qdir / name
        self._odd.discard(name)
        try:
            sio.private_dir(qdir, create=True)
            os.replace(path, target)  # a planted symlink at target is replaced, not followed
        except FileNotFoundError:
            self._drop(path)
            return target
        except OSError as exc:
            self._problem("quarantine", f"cannot quarantine {path.name} ({reason}): {exc}")
            return target  # a claim stays held: this process will not send it
        self._drop(path)
        try:
            self._put(qdir, name + ".reason", (reason.rstrip() + "\n").encode())
        except OSError as exc:
            log.warning("cannot write the reason for quarantined %s: %s", name, exc)
        log.error("spill file %s quarantined: %s", name, reason)
        with self._lock:
            self._bytes_estimate = None  # rescan on the next write
        return target

    def quarantine_batch(self, bucket: Bucket, events: Sequence[Event], *, sink: str,
                         reason: str) -> Path:
        """Write a batch the receiver rejected straight into the quarantine (OSError if not)."""
        try:
            data = encode_batch(uuid.uuid4().hex[:16], time.time(), sink, bucket, events, 1,
                                reason, _BOOT_ID, _wall_minus_monotonic())
        except Exception as exc:
            raise OSError(f"cannot encode a quarantine file: {type(exc).__name__}: {exc}") from exc
        qdir = self.directory / QUARANTINE
        self._prepare(create=True)
        sio.private_dir(qdir, create=True)
        target = self._write_new(data, time.time(), len(events), None, directory=qdir)
        self._put(qdir, target.name + ".reason", (reason.rstrip() + "\n").encode())
        return target

    def quarantined(self) -> List[Path]:
        """Files in the quarantine (regular spill-like files only), oldest first."""
        try:
            with os.scandir(self.directory / QUARANTINE) as it:
                return sorted((Path(e.path) for e in it if e.name.endswith(".json")
                               and e.is_file(follow_symlinks=False)), key=lambda p: p.name)
        except OSError:
            return []

    # ---- claims of others -----------------------------------------------------------------

    def reclaim_stale(self, max_age: float = 0.0) -> int:
        """Take over claims of processes that are gone (their lock is free); returns how many.

        Also sets aside non-regular files named like spill files. ``max_age`` is ignored: a
        claim's age says nothing about its owner (clocks step; a Pi has no RTC).
        """
        if not self._usable():
            return 0
        count = 0
        try:
            listing = os.listdir(self.directory)
        except OSError as exc:
            self._problem("listing", f"cannot list spool {self.directory}: {exc}")
            return 0
        for name in listing:
            if name in self._odd:
                self._set_aside(self.directory / name, name, "not a regular file")
            claim = names.parse_claim(name)
            if claim is None or name in self._held:
                continue
            path = self.directory / name
            try:
                fd = sio.open_regular(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                self._set_aside(path, claim[0], f"cannot be read as a spill file: {exc}")
                continue
            try:
                if sio.try_lock(fd):  # its owner is gone: nobody else holds the lock
                    os.rename(path, self.directory / claim[0])
                    count += 1
            except OSError as exc:
                if not isinstance(exc, FileNotFoundError):
                    self._problem("claiming", f"cannot take over {name}: {exc}")
            finally:
                os.close(fd)
        return count

    def release_own_claims(self, keep: Optional[Path] = None) -> None:
        """On close: give back every file this Spool still holds (but ``keep``)."""
        for name in list(self._held):
            if keep is None or name != keep.name:
                self._rename_back(self.directory / name)

    def _forget_held_in_child(self) -> None:
        # A forked child shares its parent's locks; closing its copies keeps the parent's.
        for fd in self._held.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._held = {}


def _after_fork_in_child() -> None:
    for spool in list(_all_spools):
        spool._forget_held_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
