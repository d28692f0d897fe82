"""The spill file format: encoding, strict decoding, and a streaming reader for huge files.

A spill file is one JSON object whose last member is ``events``, an array of
``[key, value, epoch]``. Everything before it (the header) is small, so a file of any size
can be read in bounded memory: the header is decoded member by member, then the events one
by one with ``json.JSONDecoder.raw_decode`` over chunks of the file.

Format 1 files of earlier versions lack ``boot_id`` and ``wall_minus_monotonic``; both are
optional, so the format number is unchanged. Metadata no writer could have produced (a NaN or
far-future ``created``, a negative ``attempts``, a number where a string belongs) makes the
file corrupt: it is quarantined, never allowed to crash a sender.
"""

from __future__ import annotations

import codecs
import json
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import IsStreamerError
from ..events import FixedEpoch, normalise_epoch, normalise_key, normalise_value
from ..model import Bucket, Event

FORMAT_VERSION = 1
MAX_CREATED_S = 1e11  # about the year 5138: anything later was never a real clock
MAX_HEADER_BYTES = 1 << 20  # the members before "events"; last_error is a server message
CHUNK_BYTES = 1 << 20  # read size of the streaming reader
_MAX_EVENT_CHARS = 64 * 1024  # far above a 250-char key plus a 2000-char string value
_WS = " \t\n\r"
_decoder = json.JSONDecoder()


def read_boot_id(source: Path = Path("/proc/sys/kernel/random/boot_id")) -> str:
    """This boot's id (Linux), "" when the system has none."""
    try:
        return source.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


BOOT_ID = read_boot_id()


def wall_minus_monotonic() -> float:
    """time.time() - time.monotonic() now: with it, a later fix can undo a wall-clock step."""
    # Milliseconds are as precise as two clock readings in a row; fewer digits, steadier sizes.
    return round(time.time() - time.monotonic(), 3)


class CorruptSpillFile(IsStreamerError, ValueError):
    """A spill file that cannot be read back as a batch."""


@dataclass
class SpillBatch:
    """One spill file's content, loaded from a claimed file."""

    path: Path  # the claimed path; pass it back to delete/release/quarantine
    id: str
    created: float
    sink: str
    bucket: Bucket
    events: list[Event]
    attempts: int = 0
    last_error: str = ""
    boot_id: str = ""  # of the machine that wrote it; "" when unknown
    wall_minus_monotonic: float | None = None  # time.time() - time.monotonic() at writing
    epochs_known: bool = False  # the file tells given epochs (FixedEpoch) from default ones


def encode_batch(
    batch_id: str,
    created: float,
    sink: str,
    bucket: Bucket,
    events: Sequence[Event],
    attempts: int,
    last_error: str,
    boot_id: str = "",
    wall_minus_monotonic: float | None = None,
) -> bytes:
    doc: dict = {
        "format": FORMAT_VERSION,
        "id": batch_id,
        "created": created,
        "sink": sink,
        "bucket_key": bucket.key,
        "bucket_name": bucket.name,
        "attempts": attempts,
        "last_error": last_error,
        "boot_id": boot_id,
    }
    if wall_minus_monotonic is not None:
        doc["wall_minus_monotonic"] = wall_minus_monotonic
    # The events whose epoch the caller gave (never re-stamped after a clock step); present,
    # even empty, so that a reader can tell default epochs apart (files of earlier versions
    # lack it and are never re-stamped).
    doc["fixed"] = [i for i, event in enumerate(events) if type(event[2]) is FixedEpoch]
    doc["events"] = [[k, v, e] for k, v, e in events]  # last: the streaming reader relies on it
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def _number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def check_header(header: dict) -> dict:
    """The header members checked for type and range; CorruptSpillFile when impossible."""
    if header.get("format") != FORMAT_VERSION:
        raise CorruptSpillFile(f"unknown spill format {header.get('format')!r}")
    for name in ("id", "sink", "bucket_key"):
        if type(header.get(name)) is not str:
            raise CorruptSpillFile(f"{name} must be a string, got {header.get(name)!r:.80}")
    for name in ("bucket_name", "last_error", "boot_id"):
        if type(header.get(name, "")) is not str:
            raise CorruptSpillFile(f"{name} must be a string, got {header.get(name)!r:.80}")
    created: Any = header.get("created")
    if not _number(created) or not 0 <= created <= MAX_CREATED_S:
        raise CorruptSpillFile(f"impossible created time {created!r:.80}")
    attempts = header.get("attempts", 0)
    if type(attempts) is not int or attempts < 0:
        raise CorruptSpillFile(f"impossible attempts {attempts!r:.80}")
    offset = header.get("wall_minus_monotonic")
    if offset is not None and not _number(offset):
        raise CorruptSpillFile(f"impossible wall_minus_monotonic {offset!r:.80}")
    fixed = header.get("fixed")
    if fixed is not None and (
        not isinstance(fixed, list) or any(type(i) is not int or i < 0 for i in fixed)
    ):
        raise CorruptSpillFile(f"impossible fixed {fixed!r:.80}")
    return header


def _marked(events: Iterable[Event], header: dict) -> Iterator[Event]:
    """``events`` with the epochs the header lists as given turned back into FixedEpoch."""
    fixed = set(header.get("fixed") or ())
    for index, event in enumerate(events):
        if index in fixed:
            event = (event[0], event[1], FixedEpoch(event[2]))
        yield event


def decode_event(item: Any) -> Event:
    if not isinstance(item, list) or len(item) != 3:
        raise CorruptSpillFile(f"an event must be [key, value, epoch], got {item!r:.80}")
    try:
        return normalise_key(item[0]), normalise_value(item[1]), normalise_epoch(item[2])
    except Exception as exc:  # any failure of validation: the file is not ours to send
        raise CorruptSpillFile(f"bad event {item!r:.80}: {exc}") from None


def batch_from(path: Path, header: dict, events: list[Event]) -> SpillBatch:
    offset = header.get("wall_minus_monotonic")
    return SpillBatch(
        path=path,
        id=header["id"],
        created=float(header["created"]),
        sink=header["sink"],
        bucket=Bucket(header["bucket_key"], header.get("bucket_name", "")),
        events=events,
        attempts=header.get("attempts", 0),
        last_error=header.get("last_error", ""),
        boot_id=header.get("boot_id", ""),
        wall_minus_monotonic=None if offset is None else float(offset),
        epochs_known="fixed" in header,
    )


def decode_batch(path: Path, data: bytes) -> SpillBatch:
    """A whole spill file's bytes as a batch; CorruptSpillFile for anything else."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise CorruptSpillFile(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise CorruptSpillFile(f"a spill file is a JSON object, not {type(doc).__name__}")
    events = doc.pop("events", None)
    if not isinstance(events, list):
        raise CorruptSpillFile("no events array")
    check_header(doc)
    return batch_from(path, doc, list(_marked((decode_event(item) for item in events), doc)))


class EventStream:
    """Reads a spill file from an fd in chunks: ``header`` first, then ``events()`` lazily."""

    def __init__(self, fd: int, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._fd, self._chunk, self._offset = fd, chunk_bytes, 0
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._text, self._pos, self._eof = "", 0, False
        self.header = check_header(self._read_header())

    def _more(self) -> bool:
        """Read the next chunk; False at the end of the file."""
        if self._eof:
            return False
        data = os.pread(self._fd, self._chunk, self._offset)
        self._offset += len(data)
        self._eof = not data
        try:
            text = self._utf8.decode(data, final=self._eof)
        except UnicodeDecodeError as exc:
            raise CorruptSpillFile(f"not UTF-8: {exc}") from None
        self._text, self._pos = self._text[self._pos :] + text, 0
        return bool(data)

    def _skip_ws(self) -> str:
        """The next non-blank character ("" at the end of the file)."""
        while True:
            while self._pos < len(self._text) and self._text[self._pos] in _WS:
                self._pos += 1
            if self._pos < len(self._text):
                return self._text[self._pos]
            if not self._more():
                return ""

    def _expect(self, chars: str) -> str:
        char = self._skip_ws()
        if not char or char not in chars:
            raise CorruptSpillFile(
                f"expected one of {chars!r} at byte ~{self._offset}, got "
                f"{char or 'the end of the file'!r}"
            )
        self._pos += 1
        return char

    def _value(self, limit: int) -> Any:
        self._skip_ws()
        while True:
            try:
                value, end = _decoder.raw_decode(self._text, self._pos)
            except (ValueError, RecursionError) as exc:
                if self._eof or len(self._text) - self._pos > limit:
                    raise CorruptSpillFile(f"not JSON near byte ~{self._offset}: {exc}") from None
                self._more()
                continue
            if end == len(self._text) and not self._eof:  # a number may go on in the next chunk
                self._more()
                continue
            self._pos = end
            return value

    def _read_header(self) -> dict:
        header: dict = {}
        self._expect("{")
        while True:
            key = self._value(MAX_HEADER_BYTES)
            if type(key) is not str:
                raise CorruptSpillFile("not a JSON object")
            self._expect(":")
            if key == "events":
                self._expect("[")
                return header
            header[key] = self._value(MAX_HEADER_BYTES)
            if self._expect(",}") == "}":
                raise CorruptSpillFile("no events array (or not the last member)")

    def events(self) -> Iterator[Event]:
        """The events, decoded and checked one by one; CorruptSpillFile at the first bad one."""
        if self._skip_ws() == "]":
            self._pos += 1
        else:
            while True:
                yield decode_event(self._value(_MAX_EVENT_CHARS))
                if self._expect(",]") == "]":
                    break
        self._expect("}")
        if self._skip_ws():
            raise CorruptSpillFile("data after the end of the spill document")


def stream_parts(
    fd: int, max_events: int, max_bytes: int, size_of: Callable[[Event], int]
) -> tuple[dict, Iterator[list[Event]]]:
    """(header, parts): the events of a spill file in lists of bounded count and size."""
    stream = EventStream(fd)

    def parts() -> Iterator[list[Event]]:
        part: list[Event] = []
        used = 0
        for event in _marked(stream.events(), stream.header):
            part.append(event)
            used += size_of(event)
            if len(part) >= max_events or used >= max_bytes:
                yield part
                part, used = [], 0
        if part:
            yield part

    return stream.header, parts()


def count_events(fd: int) -> int:
    """Events in a whole, valid spill file; CorruptSpillFile at the first problem."""
    return sum(1 for _ in EventStream(fd).events())


def check_whole(fd: int, expected: int) -> str:
    """ "" when the file is a complete spill document with ``expected`` events, else why not."""
    try:
        found = count_events(fd)
    except (CorruptSpillFile, OSError) as exc:
        return str(exc)
    return "" if found == expected else f"{found} events where its name says {expected}"


def peek(fd: int, path: Path, max_events: int) -> tuple[SpillBatch, int]:
    """(batch with the first ``max_events`` events, events in all), in bounded memory."""
    stream = EventStream(fd)
    first: list[Event] = []
    total = 0
    for event in stream.events():
        if total < max_events:
            first.append(event)
        total += 1
    return batch_from(path, stream.header, first), total
