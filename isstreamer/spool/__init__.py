"""Spill files: the one package that knows their names, format and life on disk.

``store`` is the directory of spill files (write, load, release, quota) and ``ownership``
the files it holds (claim, delete, give back, quarantine, take over the claims of the dead);
``names`` builds and reads file names, ``format`` encodes and streams the JSON, ``claims``
decides who owns a claimed file, ``safe_io`` never follows a symlink, ``listing`` answers
what is waiting and purges, ``legacy`` reads the files ISStreamer left behind.
"""

from __future__ import annotations

from .format import FORMAT_VERSION, CorruptSpillFile, SpillBatch, decode_batch, encode_batch
from .names import event_count
from .quarantine import QUARANTINE
from .store import DEFAULT_MAX_BYTES, Spool

__all__ = [
    "Spool",
    "SpillBatch",
    "CorruptSpillFile",
    "event_count",
    "encode_batch",
    "decode_batch",
    "FORMAT_VERSION",
    "QUARANTINE",
    "DEFAULT_MAX_BYTES",
]
