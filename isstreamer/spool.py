"""Spill files: batches that could not be delivered, kept on disk until they can be.

One JSON file per spilled batch, named ``<UTC time>-<id>-n<events>.json`` so that a sort by
name is a sort by age and the event count is known without reading the file (evictions are
counted cheaply). Files are written to a temp file, fsync'd and renamed into place; the
directory is 0700 and the files 0600. The access key is never written: replay takes it from
the current configuration.

A sender *claims* a file by renaming it to ``<name>.claim.<pid>.<token>`` before sending, so
two Streamers or processes sharing a spool never send the same file. A claim left by a dead
process is renamed back and taken over.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from .events import normalise_epoch, normalise_key, normalise_value
from .sinks.base import Bucket, Event

log = logging.getLogger("isstreamer")

FORMAT_VERSION = 1
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
QUARANTINE = "quarantine"
_NAME = re.compile(r"^(?P<stamp>\d{8}T\d{6}\.\d{6})-(?P<id>[0-9a-f]+)-n(?P<count>\d+)\.json$")
_CLAIM = re.compile(r"^(?P<name>.+\.json)\.claim\.(?P<pid>\d+)\.(?P<token>[0-9a-f]+)$")


class CorruptSpillFile(ValueError):
    """A spill file that cannot be read back as a batch."""


@dataclass
class SpillBatch:
    """One spill file's content, loaded from a claimed file."""

    path: Path  # the claimed path; pass it back to delete/release/quarantine
    id: str
    created: float
    sink: str
    bucket: Bucket
    events: List[Event]
    attempts: int = 0
    last_error: str = ""
    extra: dict = field(default_factory=dict)


def event_count(path: Path) -> int:
    """Events in a spill file, from its name (0 when the name is not ours)."""
    m = _NAME.match(path.name)
    return int(m.group("count")) if m else 0


def _fsync_dir(directory: Path) -> None:
    # The rename is durable across a power cut only once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True


def encode_batch(batch_id: str, created: float, sink: str, bucket: Bucket, events: Sequence[Event],
                 attempts: int, last_error: str) -> bytes:
    doc = {
        "format": FORMAT_VERSION,
        "id": batch_id,
        "created": created,
        "sink": sink,
        "bucket_key": bucket.key,
        "bucket_name": bucket.name,
        "attempts": attempts,
        "last_error": last_error,
        "events": [[k, v, e] for k, v, e in events],
    }
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def decode_batch(path: Path, data: bytes) -> SpillBatch:
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
            raise CorruptSpillFile(f"unknown spill format {doc.get('format') if isinstance(doc, dict) else type(doc).__name__!r}")
        events = [(normalise_key(k), normalise_value(v), normalise_epoch(e)) for k, v, e in doc["events"]]
        return SpillBatch(path=path, id=str(doc["id"]), created=float(doc["created"]), sink=str(doc["sink"]),
                          bucket=Bucket(str(doc["bucket_key"]), str(doc.get("bucket_name", ""))),
                          events=events, attempts=int(doc.get("attempts", 0)),
                          last_error=str(doc.get("last_error", "")))
    except CorruptSpillFile:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptSpillFile(f"{type(exc).__name__}: {exc}") from None


class Spool:
    """A directory of spill files with a byte quota."""

    def __init__(self, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES,
                 on_evict: Optional[Callable[[int, int], None]] = None) -> None:
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self._on_evict = on_evict  # called with (files, events) evicted
        self._lock = threading.Lock()
        self._token = uuid.uuid4().hex[:8]
        self._bytes_estimate: Optional[int] = None  # lazily scanned; own writes keep it current

    # ---- writing --------------------------------------------------------------------------

    def ensure_dir(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.directory.stat().st_mode & 0o077:
            os.chmod(self.directory, 0o700)

    def write(self, bucket: Bucket, events: Sequence[Event], *, sink: str, attempts: int = 0,
              last_error: str = "", created: Optional[float] = None, batch_id: Optional[str] = None) -> Path:
        """Write one batch durably; raises OSError when the disk refuses."""
        self.ensure_dir()
        created = time.time() if created is None else created
        batch_id = batch_id or uuid.uuid4().hex[:16]
        data = encode_batch(batch_id, created, sink, bucket, events, attempts, last_error)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(created)) + f".{int(created % 1 * 1e6):06d}"
        final = self.directory / f"{stamp}-{uuid.uuid4().hex[:12]}-n{len(events)}.json"
        tmp = self.directory / f".{final.name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        _fsync_dir(self.directory)
        try:
            self._account(len(data), exclude=final)
        except OSError as exc:  # the batch is safe on disk; only the quota check failed
            log.warning("spool quota check in %s failed: %s", self.directory, exc)
        return final

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
            log.warning("spool over its quota of %d bytes: evicted the %d oldest file(s), %d events lost",
                        self.max_bytes, files, events)
            if self._on_evict:
                self._on_evict(files, events)

    # ---- reading --------------------------------------------------------------------------

    def files(self) -> List[Path]:
        """Unclaimed spill files, oldest first."""
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.endswith(".json") and not n.startswith("."))
        except FileNotFoundError:
            return []
        return [self.directory / n for n in names]

    def usage(self) -> Tuple[int, int]:
        """(files, bytes) of spill files including claimed ones, quarantine excluded."""
        count = size = 0
        try:
            with os.scandir(self.directory) as it:
                for entry in it:
                    if entry.is_file() and ".json" in entry.name and not entry.name.startswith("."):
                        count += 1
                        size += entry.stat().st_size
        except FileNotFoundError:
            pass
        return count, size

    def claim(self, path: Path) -> Optional[Path]:
        """Take a file for sending; None when another sender has it (or it is gone)."""
        claimed = path.with_name(f"{path.name}.claim.{os.getpid()}.{self._token}")
        try:
            # The claim's age is its mtime: touch the file first, or another process could
            # take the fresh claim of an old file for a stale one and steal it.
            os.utime(path)
            os.rename(path, claimed)
        except FileNotFoundError:
            return None
        return claimed

    def load(self, claimed: Path) -> SpillBatch:
        try:
            data = claimed.read_bytes()
        except OSError as exc:
            raise CorruptSpillFile(f"unreadable: {exc}") from None
        return decode_batch(claimed, data)

    def delete(self, claimed: Path) -> None:
        size = 0
        try:
            size = claimed.stat().st_size
            claimed.unlink()
        except FileNotFoundError:
            pass
        with self._lock:
            if self._bytes_estimate is not None:
                self._bytes_estimate = max(0, self._bytes_estimate - size)

    def release(self, batch: SpillBatch, remaining: Optional[Sequence[Event]] = None,
                last_error: str = "") -> None:
        """Give a claimed file back, with fewer events if some were delivered."""
        attempts = batch.attempts + 1
        last_error = last_error or batch.last_error
        if remaining is not None and len(remaining) != len(batch.events) or last_error != batch.last_error:
            events = batch.events if remaining is None else remaining
            if events:
                self.write(batch.bucket, events, sink=batch.sink, attempts=attempts, last_error=last_error,
                           created=batch.created, batch_id=batch.id)
            self.delete(batch.path)
            return
        original = _original_name(batch.path)
        try:
            os.rename(batch.path, original)
        except FileNotFoundError:
            pass

    def quarantine(self, path: Path, reason: str) -> Path:
        """Move a file aside for a human, with a .reason file beside it."""
        qdir = self.directory / QUARANTINE
        qdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = qdir / _original_name(path).name
        try:
            os.replace(path, target)
        except FileNotFoundError:
            return target
        reason_path = target.with_name(target.name + ".reason")
        fd = os.open(reason_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(reason.rstrip() + "\n")
        log.error("spill file %s quarantined: %s", target.name, reason)
        with self._lock:
            self._bytes_estimate = None  # rescan on the next write
        return target

    def quarantine_batch(self, bucket: Bucket, events: Sequence[Event], *, sink: str, reason: str) -> Path:
        """Write a batch the receiver rejected straight into the quarantine."""
        path = self.write(bucket, events, sink=sink, attempts=1, last_error=reason)
        return self.quarantine(path, reason)

    def reclaim_stale(self, max_age: float = 3600.0) -> int:
        """Rename back claims of dead processes (or very old ones); returns how many."""
        count = 0
        now = time.time()
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return 0
        for name in names:
            m = _CLAIM.match(name)
            if not m:
                continue
            path = self.directory / name
            pid = int(m.group("pid"))
            mine = pid == os.getpid() and m.group("token") == self._token
            try:
                old = now - path.stat().st_mtime > max_age
            except FileNotFoundError:
                continue
            if mine or (_pid_alive(pid) and not old):
                continue
            try:
                os.rename(path, self.directory / m.group("name"))
                count += 1
            except FileNotFoundError:
                pass
        return count

    def release_own_claims(self, keep: Optional[Path] = None) -> None:
        """On close: give back every file this Spool still holds (but ``keep``)."""
        for name in os.listdir(self.directory) if self.directory.exists() else []:
            m = _CLAIM.match(name)
            if keep is not None and name == keep.name:
                continue
            if m and int(m.group("pid")) == os.getpid() and m.group("token") == self._token:
                try:
                    os.rename(self.directory / name, self.directory / m.group("name"))
                except FileNotFoundError:
                    pass


def _original_name(path: Path) -> Path:
    m = _CLAIM.match(path.name)
    return path.with_name(m.group("name")) if m else path
