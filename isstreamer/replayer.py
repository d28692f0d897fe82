"""Replaying spilled files from the worker: claim, send in chunks, give back what is left.

Files go oldest first, one chunk per call, so the worker can interleave them with live
batches. A chunk is settled like a live batch (Delivery.resolve: partial success, split,
bisection, quarantine); the file then holds exactly what was not delivered. A one-event
chunk the receiver keeps refusing while it accepts others does not open the circuit: the
file is set aside until the next rescan, and quarantined after POISON_ATTEMPTS tries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .model import Event, Outcome
from .report import Pending, Report, Tally, describe, refused
from .spool import CorruptSpillFile, SpillBatch, event_count
from .spool.names import original_name

if TYPE_CHECKING:
    from .delivery import Delivery

log = logging.getLogger("isstreamer")

RESCAN_INTERVAL = 60.0  # seconds between looks for spill files other processes left
WAIT_STEP_S = 0.25  # flush()/close() look again at least this often while they wait
POISON_ATTEMPTS = 3  # tries of a lone refused event, across rescans, before it is quarantined


class Replayer:
    """The worker's replay of one spool to one sink; used by one thread at a time."""

    def __init__(self, delivery: Delivery, batch_events: int) -> None:
        self.delivery = delivery
        self.batch_events = max(1, batch_events)
        self.drained = threading.Event()  # set while the spool holds nothing this sink can send
        self._queue: deque[Path] = deque()
        self._current: SpillBatch | None = None
        self._left: list[Event] = []  # of the current file: what is not yet delivered
        self._inflight = False  # a chunk is on the wire: close() must not give the file back
        self._scan_needed = delivery.spool is not None
        self._last_scan = float("-inf")
        self._skip: set[str] = set()  # files meant for another receiver
        self._held: set[str] = set()  # files with a lone refused event: left until a rescan

    def spilled(self) -> None:
        """A new spill file exists."""
        self.drained.clear()
        self._scan_needed = True

    def request(self, probe: bool) -> None:
        """Look at the spool again now; with ``probe``, even while the circuit is open."""
        self.drained.clear()
        self._scan_needed = True
        self._held.clear()
        if probe:
            self.delivery.circuit.probe_now()

    def current_name(self) -> str | None:
        return original_name(self._current.path.name) if self._current is not None else None

    def has_work(self) -> bool:
        d = self.delivery
        if d.spool is None or d.stopping() or d.circuit.blocks():
            return False
        if self._current is not None or self._queue or self._scan_needed:
            return True
        if d._clock() - self._last_scan > RESCAN_INTERVAL:
            return True
        self.drained.set()
        return False

    def step(self) -> Report | None:
        """Send one chunk of spilled events: what became of them (``spilled``: kept in the
        file), or None when there was nothing to send."""
        d = self.delivery
        if d.stopping():
            return None  # closing: a claimed file would be left behind half-replayed
        batch = self._current or self._claim_next()
        if batch is None:
            return None
        assert d.spool is not None
        name = original_name(batch.path.name)
        chunk, rest = self._left[: self.batch_events], self._left[self.batch_events :]
        pending = Pending(chunk)
        probing = d.circuit.probing()
        was_ok = d.circuit.last_ok
        self._inflight = True
        try:
            result = d.send(batch.bucket, pending, probe=probing)
        finally:
            self._inflight = False
        tally = Tally(
            lambda outcome, n: d.stats.left_file(
                batch.id, n, "replayed" if outcome == "sent" else outcome
            )
        )
        lone = (
            result.outcome is Outcome.RETRY
            and refused(result)
            and not probing
            and was_ok
            and len(pending.events) == 1
        )
        if lone and batch.attempts + 1 >= POISON_ATTEMPTS:
            tally("sent", pending.stored)
            d.quarantine(
                batch.bucket,
                pending.events,
                f"the receiver refused this event "
                f"{batch.attempts + 1} times while accepting others ({describe(result)})",
                tally,
            )
            left: list[Event] = []
            last = result
        else:
            left, last = d.resolve(batch.bucket, pending, result, tally)
        self._left = left + rest
        if not left:
            if not self._left:
                d.spool.delete(batch.path)
                self._current = None
        elif lone:
            self._held.add(name)  # not an outage: later files go on
            d.circuit.last_ok = False  # a second refusal in a row is one
            d.stats.error(describe(last))
            self.release(describe(last), attempted=True)
        else:
            d.failed(last)
            self.release(describe(last), attempted=True)
        if d.stopping():
            self.release()  # close() left this file to us while its chunk was on the wire
        d.notify_progress()
        # What this chunk left undelivered is back in its file: on disk, to be replayed.
        return tally.report() + Report(spilled=len(left))

    def release(self, last_error: str = "", attempted: bool = False) -> Path | None:
        """Give back the file being replayed, keeping only what was not yet delivered.

        Returns the claimed path that was kept instead when a chunk of it is still being sent
        (the worker gives it back once the answer is in), else None.
        """
        if self._inflight and self._current is not None:
            return self._current.path
        batch, self._current = self._current, None
        spool = self.delivery.spool
        if batch is None or spool is None:
            return None
        self._scan_needed = True  # the file is back (maybe renamed): the next probe looks again
        try:
            if not self._left:
                spool.delete(batch.path)
            elif attempted:
                # The try is counted in the file (its attempts), which is what ends a poison
                # event's tries; the error text changes with it, so the file is rewritten.
                tries = batch.attempts + 1
                spool.release(batch, self._left, f"{last_error or 'failed'} (try {tries})")
            else:
                spool.release(batch, self._left)
        except Exception as exc:  # the claimed file stays; a later run takes it over
            log.error("cannot give back spill file %s: %s", batch.path.name, exc)
        return None

    def _claim_next(self) -> SpillBatch | None:
        d = self.delivery
        spool = d.spool
        assert spool is not None
        while True:
            if not self._queue:
                due = d._clock() - self._last_scan > RESCAN_INTERVAL
                if not self._scan_needed and not due:
                    self.drained.set()
                    return None
                if due:
                    self._held.clear()  # a periodic rescan tries set-aside files again
                self._scan_needed = False
                self._last_scan = d._clock()
                try:
                    spool.reclaim_stale()
                    names = spool.files()
                except OSError as exc:
                    log.error("cannot list the spool %s: %s", spool.directory, exc)
                    names = []
                self._queue.extend(
                    p for p in names if p.name not in self._skip and p.name not in self._held
                )
                if not self._queue:
                    self.drained.set()
                    return None
            path = self._queue.popleft()
            try:
                claimed = spool.claim(path)
            except OSError:
                claimed = None
            if claimed is None:
                continue  # another sender has it
            try:
                batch = spool.load(claimed)
            except CorruptSpillFile as exc:
                self._quarantine_file(claimed, path, f"unreadable spill file: {exc}")
                continue
            if batch.sink != d.sink.address:
                self._skip.add(path.name)
                spool.release(batch)
                continue
            self._current, self._left = batch, list(batch.events)
            if d.clock is not None:  # a clock step since the file was written re-stamps
                self._left = d.clock.restamp_batch(batch, self._left)
            d.stats.seen(batch.id, original_name(batch.path.name))
            return batch

    def _quarantine_file(self, claimed: Path, path: Path, reason: str) -> None:
        d = self.delivery
        assert d.spool is not None
        count = event_count(path)
        own = d.stats.gone(path.name, count, "quarantined")
        try:
            d.spool.quarantine(claimed, reason)
        except Exception as exc:
            log.error("cannot quarantine %s (%s)", claimed.name, exc)
        d.stats.add("quarantined_other", count - own)

    def wait_own(
        self,
        deadline: float | None,
        while_open: bool,
        wake: Callable[[], None] | None,
        stop: threading.Event,
    ) -> bool:
        """Wait until the own spill files (this Streamer's) are delivered; False at the deadline.

        While the circuit is open that is not waited for (``while_open`` False: flush), or
        waited for with the probes on their schedule, giving up when the next probe falls
        after the deadline or the receiver refused the key (close). ``wake`` wakes the worker;
        without one the replay runs on this thread.
        """
        d, stats = self.delivery, self.delivery.stats
        while stats.own_on_disk():
            now = time.monotonic()
            if d.open and (not while_open or d.circuit.refused_key):
                return not while_open  # a refused key is not fixed by waiting
            if deadline is not None and (now >= deadline or d.open and d.probe_at > deadline):
                return False
            if wake is None:
                if d.open and d.probe_at > now:
                    stop.wait(d.probe_at - now)
                elif self.step() is None and stats.own_on_disk():
                    return False  # nothing of ours can be claimed now (another sender has it)
                continue
            if self.drained.is_set() and self._current is None and not self._queue:
                return False  # the worker found nothing of ours to send (held, or another's)
            with d.progress:
                d.waiters += 1
                try:
                    wake()
                    if stats.own_on_disk():
                        d.progress.wait(
                            WAIT_STEP_S if deadline is None else min(WAIT_STEP_S, deadline - now)
                        )
                finally:
                    d.waiters -= 1
        return True

    def replay_all(self, deadline: float | None = None) -> bool:
        """Replay until the spool is empty, the sink fails or the deadline; True when empty."""
        d = self.delivery
        self.request(probe=True)  # asked by hand: try now, whatever the circuit says
        while deadline is None or d._clock() < deadline:
            if d.stopping() or d.circuit.blocks():
                break
            if self.step() is None:
                return not self._held
        self.release()
        return False
