"""Wall-clock steps: default-epoch events logged before a step are re-stamped by it.

A Raspberry Pi has no real-time clock: it boots with the time fake-hwclock saved (often hours
behind) and NTP steps the clock later. An event's default epoch is ``time.time()`` at the
``log()`` call, so everything logged before the step carries the wrong time. A step shows as
a jump of ``time.time() - time.monotonic()`` (the "offset"), which is steady otherwise: NTP
slews small errors by a few parts per million.

log() pays nothing: default epochs are plain floats, given ones ``FixedEpoch`` (events.py).
The worker calls ``check()`` before each take from the buffer. Buffer positions say which
events were logged before the previous check (before the step, surely); for those logged
between the two checks the epochs decide, and when a step is found the boundary position is
kept. Events are re-stamped as they leave the buffer (``restamp()``), so a step costs nothing
until then. This process's own spill files are corrected when replayed: for each one the
offset its events were stamped with and its given epochs are remembered (``spilled()``).

Limits: an event already on the wire (in retries) when the step is seen is not corrected;
spill files of other processes are corrected by the offset and boot id written in them
(``restamp_batch``), but never those of an earlier boot (after a reboot the offset means
nothing) nor those of earlier versions (their given epochs are not marked); a step before
the first event is invisible (nothing was logged with the wrong time); when the worker did
not look for longer than the step itself, events of that stretch are told apart by their
epochs, which a pause in logging as long as the step can mislead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable

from .events import FixedEpoch
from .sinks.base import Event
from .spool.format import BOOT_ID

if TYPE_CHECKING:
    from .buffer import Buffer
    from .spool.format import SpillBatch
    from .stats import Stats

log = logging.getLogger("isstreamer")

STEP_MIN_S = 2.0  # a change of the offset above this is a step, not drift or jitter
MAX_TRACKED_FILES = 100_000  # own spill files remembered; past it the oldest are forgotten


class ClockWatch:
    """Notices wall-clock steps and moves the default epochs of undelivered events by them."""

    def __init__(
        self,
        stats: Stats,
        *,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        step_min_s: float = STEP_MIN_S,
    ) -> None:
        self.stats = stats
        self._wall, self._mono = wall, mono
        self.step_min_s = step_min_s
        self.offset, self._checked_at = self._read()
        self._checked_pos = 0  # buffer position when last checked
        self.steps: list[tuple[int, float]] = []  # (first position not re-stamped, seconds)
        self._files: dict[str, tuple[float, frozenset[float]]] = {}  # batch id -> (offset, given)
        self._lock = threading.Lock()  # spilled() may run on the caller's thread (overflow)

    def _read(self) -> tuple[float, float]:
        mono = self._mono()
        return self._wall() - mono, mono

    # ---- the buffer ---------------------------------------------------------------------

    def check(self, buffer: Buffer) -> None:
        """Before a take (under the worker's take lock): look for a step since the last one."""
        position = buffer.total()
        offset, now = self._read()
        step = offset - self.offset
        if abs(step) > self.step_min_s:
            boundary = self._boundary(buffer, position, offset, now)
            self.steps.append((boundary, step))
            log.warning(
                "the wall clock was stepped by %+.1f s; events logged before it with the "
                "default epoch and not yet delivered are re-stamped by the step "
                "(stats()['restamped'])",
                step,
            )
        # Also below a step: NTP's slow slewing is followed, never taken for a step later.
        self.offset, self._checked_at, self._checked_pos = offset, now, position

    def _boundary(self, buffer: Buffer, position: int, offset: float, now: float) -> int:
        """The first buffer position logged after the step."""
        first = buffer.taken
        start = max(self._checked_pos, first)
        items = list(buffer.items)
        window = items[start - first : position - first]
        step = offset - self.offset
        slack = min(0.5, abs(step) / 4)
        before = items[start - first - 1] if start > first else None  # the last event checked
        previous = before[2] if type(before) is tuple and type(before[2]) is float else None
        for index, item in enumerate(window):
            if type(item) is not tuple or type(item[2]) is not float:
                continue  # a bucket marker or a given epoch says nothing about the clock
            epoch = item[2]
            if step > 0:
                # After the step an epoch is later than any the old clock could have given
                # by now; a forward jump of the step's size may come earlier.
                after = epoch > now + self.offset + slack or (
                    previous is not None
                    and epoch - previous >= step - slack
                    and epoch >= self._checked_at + offset - slack
                )
            else:
                # Default epochs never go back but at a backward step.
                after = (previous is not None and epoch - previous <= step + slack) or (
                    previous is None and epoch < self._checked_at + self.offset - slack
                )
            if after:
                return start + index
            previous = epoch
        return position

    def restamp(self, first: int, items: list[Any]) -> None:
        """Move the default epochs of ``items`` (taken from position ``first``) by the steps."""
        self.steps = [s for s in self.steps if s[0] > first]
        moved = 0
        for boundary, step in self.steps:
            for index in range(min(len(items), boundary - first)):
                item = items[index]
                if type(item) is tuple and type(item[2]) is float:
                    items[index] = (item[0], item[1], item[2] + step)
                    moved += 1
        if moved:
            self.stats.add("restamped", moved)

    # ---- own spill files ----------------------------------------------------------------

    def spilled(self, batch_id: str, events: Sequence[Event]) -> None:
        """An own spill file was written: remember its offset and its given epochs."""
        given = frozenset(e for _, _, e in events if type(e) is not float)
        with self._lock:
            if len(self._files) >= MAX_TRACKED_FILES:
                self._files.pop(next(iter(self._files)))
            self._files[batch_id] = (self.offset, given)

    def restamp_batch(self, batch: SpillBatch, events: list[Event]) -> list[Event]:
        """The events of a claimed spill file, default epochs moved by the steps since it was
        written: an own file by what this process remembers, another process's file of the
        same boot by the offset in it (an earlier boot's offset means nothing: never moved)."""
        with self._lock:
            own = batch.id in self._files
        if own:
            out = self.restamp_file(batch.id, events)
            if out is not events and batch.wall_minus_monotonic is not None:
                batch.wall_minus_monotonic = self._read()[0]  # a rewrite is stamped as now
            return out
        if not batch.epochs_known or batch.wall_minus_monotonic is None:
            return events  # a file of an earlier version: given epochs are not marked
        if not batch.boot_id or batch.boot_id != BOOT_ID:
            return events
        step = self._read()[0] - batch.wall_minus_monotonic
        if abs(step) <= self.step_min_s:
            return events
        out = [(k, v, e if type(e) is FixedEpoch else e + step) for k, v, e in events]
        moved = sum(1 for _, _, e in events if type(e) is not FixedEpoch)
        # A rewrite of the file (what is left after a partial replay) is stamped as it is now.
        batch.wall_minus_monotonic += step
        if moved:
            self.stats.add("restamped", moved)
            log.warning(
                "spill file %s was written before a wall-clock step of %+.1f s: %d "
                "default epochs re-stamped",
                batch.path.name,
                step,
                moved,
            )
        return out

    def restamp_file(self, batch_id: str, events: list[Event]) -> list[Event]:
        """The events of a claimed own spill file, default epochs moved by steps since."""
        with self._lock:
            entry = self._files.get(batch_id)
        if entry is None:
            return events  # another process's file, or an earlier boot's: never changed
        stamped_with, given = entry
        step = self._read()[0] - stamped_with
        if abs(step) <= self.step_min_s:
            return events
        # Epochs read back from the file are plain floats: the given ones are known by value.
        out = [(k, v, e) if e in given else (k, v, e + step) for k, v, e in events]
        moved = sum(1 for _, _, e in events if e not in given)
        with self._lock:
            # The replayer gives the file back rewritten from these events (or deletes it).
            self._files[batch_id] = (stamped_with + step, frozenset(e for e in given))
        self.stats.add("restamped", moved)
        return out
