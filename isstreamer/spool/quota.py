"""The spool's byte quota: which files to evict, oldest first, so that the rest fits."""

from __future__ import annotations

import os
from pathlib import Path

from .names import event_count


def evict_oldest(files: list[Path], exclude: Path, max_bytes: int) -> tuple[int, int, int]:
    """Delete the oldest of ``files`` (never ``exclude``, the file just written) until all fit.

    Returns (files deleted, events in them, bytes left). Files being sent are not in
    ``files`` (they are claimed), so they are never evicted.
    """
    entries = []
    for path in files:
        if path != exclude:
            try:
                entries.append((path, os.stat(path, follow_symlinks=False).st_size))
            except FileNotFoundError:
                continue  # claimed by another sender meanwhile
    try:
        total = sum(size for _, size in entries) + exclude.stat().st_size
    except FileNotFoundError:
        total = sum(size for _, size in entries)
    count = events = 0
    for path, size in entries:
        if total <= max_bytes:
            break
        try:
            path.unlink()
        except FileNotFoundError:
            continue  # replayed by someone else meanwhile
        total -= size
        count += 1
        events += event_count(path)
    return count, events, total
