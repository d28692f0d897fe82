"""Huge spill files, cut into normal ones so that replay stays in bounded memory.

A loaded batch holds at most LOAD_MAX_EVENTS events from a file of at most LOAD_MAX_BYTES.
A bigger file (one spilled whole by an earlier version, say) is read by a streaming parse,
checked, then rewritten as parts of at most LOAD_MAX_EVENTS events and about PART_BYTES of
JSON that keep its place in line; then the first part is loaded. Memory stays near one
part's events.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from ..model import Bucket, Event
from . import format as fmt
from . import names
from . import safe_io as sio
from .format import CorruptSpillFile, SpillBatch, decode_batch
from .names import event_count

if TYPE_CHECKING:
    from .store import Spool

log = logging.getLogger("isstreamer")

LOAD_MAX_EVENTS = 20_000
LOAD_MAX_BYTES = 4 * 1024 * 1024
PART_BYTES = 1024 * 1024
_EVENT_OVERHEAD_BYTES = 30  # brackets, quotes, commas and an epoch around key and value


def _json_size(event: Event) -> int:
    return len(event[0]) + len(str(event[1])) + _EVENT_OVERHEAD_BYTES


def too_big(path: Path, size_bytes: int) -> bool:
    """True when a file must be split before it is loaded."""
    return size_bytes > LOAD_MAX_BYTES or event_count(path) > LOAD_MAX_EVENTS


def split_claimed(spool: Spool, claimed: Path, fd: int) -> SpillBatch:
    """Cut a huge claimed file into normal ones (two streaming passes); load the first.

    The first pass checks every event, so a bad one sends the whole file to the
    quarantine before any part exists. The second writes the parts: the first as a claim
    of this Spool (no other sender can take it before it is loaded), the others through
    write(), as for any new file. Splitting needs as much free space as the file; without
    it the parts written so far are removed and the file is quarantined rather than
    loaded whole (which could take far more memory than the device has).
    """
    fmt.count_events(fd)  # CorruptSpillFile at the first bad event
    parsed = names.parse_name(names.original_name(claimed.name))
    written: list[Path] = []
    try:
        header, parts = fmt.stream_parts(fd, LOAD_MAX_EVENTS, PART_BYTES, _json_size)
        bucket = Bucket(header["bucket_key"], header.get("bucket_name", ""))
        meta = dict(
            sink=header["sink"],
            attempts=header.get("attempts", 0),
            last_error=header.get("last_error", ""),
            created=header["created"],
            batch_id=header["id"],
            boot_id=header.get("boot_id", ""),
            wall_minus_monotonic=header.get("wall_minus_monotonic"),
            order=parsed.order if parsed else None,
        )
        for index, events in enumerate(parts):
            name_id = f"{index:06x}{uuid.uuid4().hex[:6]}"  # parts sort in event order
            if written:  # no quota check: the parts only replace the file
                written.append(spool.write(bucket, events, name_id=name_id, account=False, **meta))
            else:
                written.append(_write_claimed(spool, bucket, events, meta, name_id))
    except (CorruptSpillFile, OSError) as exc:
        for path in written:
            spool._drop(path)
            sio.remove(path)
        raise CorruptSpillFile(
            f"too large to load at once ({event_count(claimed)} events) and cannot split it: {exc}"
        ) from None
    if not written:
        raise CorruptSpillFile("no events")
    log.info("spool: split %s into %d files", claimed.name, len(written))
    spool.delete(claimed)
    with spool._lock:
        spool._bytes_estimate = None
    first_fd = spool._claims.fd(written[0].name)
    assert first_fd is not None
    return decode_batch(written[0], sio.read_fd(first_fd))


def _write_claimed(
    spool: Spool, bucket: Bucket, events: list[Event], meta: dict, name_id: str
) -> Path:
    """The first part of a split file, written as a claim of ours."""
    meta = dict(meta)  # shared by all parts of a split
    order = meta.pop("order")
    data = spool._encode(bucket, events, **meta)
    return spool._write_new(data, meta["created"], len(events), order, claim=True, name_id=name_id)
