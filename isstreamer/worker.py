"""The one background thread that turns buffered events into batches.

It sleeps on an Event: producers set it (notify()) for the first event after idling and
when a full batch waits; otherwise the worker wakes only when the oldest event has waited
flush_interval, or when a probe or a flush is due. No polling. When memory holds more than
max_buffer events, the worker (not the caller) writes the oldest to disk; the caller's
thread does that only when the buffer reaches twice the bound because the worker is stuck.
The Streamer uses only the methods notify, request_flush, wake_up, ship_until, stop,
relieve and resize.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from . import lifecycle
from .buffer import Buffer
from .clock import ClockWatch
from .delivery import Delivery
from .model import Bucket, Event

log = logging.getLogger("isstreamer")

OPEN_SPILL_EVENTS = 1000  # while the sink is down, spill files hold up to this many events
OPEN_SPILL_AGE = 5.0  # seconds: ... or what gathered over this long, to avoid a file per event
MAX_SLEEP = 3600.0  # seconds; Event.wait() overflows on absurd timeouts from a server's headers
OVERFLOW_LOG_INTERVAL = 60.0  # seconds between "buffer full" warnings
OVERFLOW_FILE_EVENTS = 20_000  # events per overflow spill file, what the spool loads at once


class Worker:
    """Moves events from the buffer to the Delivery, on its own thread or the caller's."""

    def __init__(
        self,
        buffer: Buffer,
        delivery: Delivery,
        bucket: Bucket,
        *,
        batch_size: int,
        flush_interval: float,
        max_buffer: int = 1 << 62,
        threaded: bool = True,
        steps: ClockWatch | None = None,
    ) -> None:
        self.buffer = buffer
        self.items = buffer.items
        self.max_buffer = max(max_buffer, batch_size)
        self.threaded = threaded
        self.delivery = delivery
        self.bucket = bucket  # the bucket of the next event taken; updated by Bucket markers
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.steps = steps  # wall-clock steps: re-stamps default epochs as they are taken
        self.wake = threading.Event()
        self.stop_event = delivery.stop_event
        self.idle = threaded  # the next event must wake the worker
        self.kicked = False  # mirrors wake: producers skip wake.set() while it is pending
        self.kick_at = batch_size  # the fill at which producers wake the worker
        self._last_overflow_log = float("-inf")
        self.flush_mark = 0  # flush() asked for everything before this buffer position
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._take_lock = threading.Lock()

    # ---- what producers and the Streamer call -------------------------------------------

    def notify(self) -> None:
        """From log(), after an append: wake the worker if it idles or a batch is ready."""
        if (self.idle or len(self.items) >= self.kick_at) and not self.kicked:
            if not self.threaded:
                self.ship_until(
                    None, self.batch_size
                )  # use_async=False: send on the caller's thread
                return
            self.idle = False
            if self._thread is None:
                self.start()
            self.kicked = True
            self.wake.set()

    def request_flush(self, mark: int) -> None:
        """Ship everything before buffer position ``mark`` now, without waiting for batches."""
        self.flush_mark = max(self.flush_mark, mark)
        if (
            self._thread is None
            and self.buffer.taken >= mark
            and not self.delivery.stats.own_on_disk()
        ):
            return  # nothing to do: don't start a thread for it
        self.wake_up()

    def wake_up(self) -> None:
        """Start the worker if need be and wake it (to replay the spool, say)."""
        self.idle = False
        self.start()
        self.wake.set()

    def ship_until(self, deadline: float | None, keep: int = 0) -> bool:
        """On the caller's thread: ship until fewer than ``keep`` (or no) events are buffered;
        False at the deadline (monotonic)."""
        while len(self.buffer) and len(self.buffer) >= max(keep, 1):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            self.ship(self.batch_size)
        return True

    def resize(self, batch_size: int, max_buffer: int) -> None:
        """A new BufferSize: batches of this many from the next take on."""
        self.batch_size, self.max_buffer = batch_size, max(max_buffer, batch_size)
        self.kick_at = min(self.kick_at, batch_size)
        self.wake.set()  # re-read the limits now: a full batch of the new size may be waiting

    def relieve(self) -> None:
        """From log() at twice max_buffer: the worker is stuck, so the caller spills the oldest."""
        if len(self.buffer) >= 2 * self.max_buffer:
            self._spill_overflow("worker busy")

    # ---- thread control -----------------------------------------------------------------

    def start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self.stop_event.is_set():
                lifecycle.warn_if_bare_fork()
                self._thread = threading.Thread(
                    target=self._run, name="isstreamer-worker", daemon=True
                )
                self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, deadline: float) -> bool:
        """Interrupt waits and retries, then join until the deadline (monotonic)."""
        self.stop_event.set()
        self.wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self.alive

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self._loop()
            except Exception:  # a bug must not silently end delivery: log it and go on
                log.exception("isstreamer worker failed; restarting its loop")
                self.stop_event.wait(1.0)

    # ---- the loop -----------------------------------------------------------------------

    def _loop(self) -> None:
        buffer, delivery = self.buffer, self.delivery
        first_seen: float | None = None
        while not self.stop_event.is_set():
            self.wake.clear()  # before looking, so a set() from now on is never lost
            self.kicked = False  # after the clear: a kick from now on sets wake again
            n = len(buffer)
            now = time.monotonic()
            if n == 0:
                first_seen = None
            elif first_seen is None:
                first_seen = now
            if n > self.max_buffer:
                self._spill_overflow("sink down" if delivery.open else "sending too slowly")
                continue
            limit, age = self._limits()
            # Producers wake us at this fill, not at every event while down.
            self.kick_at = min(limit, self.max_buffer + 1)
            flushing = self.flush_mark > buffer.taken
            # A due probe of an open circuit goes out with what is buffered, not at the
            # (longer) age of a batch while down: recovery is seen at the probe time.
            probe_due = delivery.open and not delivery.circuit.blocks()
            aged = first_seen is not None and now - first_seen >= age
            if n and (n >= limit or flushing or probe_due or aged):
                # While the circuit holds batches back they go to disk: a backlog goes in
                # big files then, with one fsync each, so the disk keeps up with a burst.
                backlog = delivery.circuit.blocks() and n > limit
                self.ship(min(n, OVERFLOW_FILE_EVENTS) if backlog else limit)
                first_seen = now if len(buffer) else None
                if delivery.has_replay_work():
                    # One spilled chunk per live batch: live is never starved.
                    delivery.replay_step()
                continue
            if delivery.has_replay_work() and delivery.replay_step():
                continue
            timeout = None if first_seen is None else max(0.0, first_seen + age - now)
            if delivery.open and delivery.spool is not None and delivery.probe_at > now:
                # Once the probe time has passed with nothing to probe with, the next live
                # batch is the probe: sleep until kicked rather than spin on a zero timeout.
                probe_in = min(delivery.probe_at - now, MAX_SLEEP)
                timeout = probe_in if timeout is None else min(timeout, probe_in)
            if n == 0:
                self.idle = True
                if len(buffer):  # an event arrived after we looked: don't sleep on it
                    self.idle = False
                    continue
            self.wake.wait(timeout)
            self.idle = False

    def _limits(self) -> tuple[int, float]:
        if self.delivery.open:
            return max(self.batch_size, OPEN_SPILL_EVENTS), max(self.flush_interval, OPEN_SPILL_AGE)
        return self.batch_size, self.flush_interval

    def ship(self, max_items: int) -> None:
        """Take up to max_items and deliver them (also called on the caller's thread)."""
        token, groups = self.take_grouped(max_items)
        try:
            self.delivery.deliver_groups(groups)
        finally:
            self.buffer.done(token)

    def take_grouped(self, max_items: int) -> tuple[int, list[tuple[Bucket, list[Event]]]]:
        """Take and group in one step, so bucket markers are applied in buffer order."""
        with self._take_lock:
            clock, first = self.steps, self.buffer.taken
            if clock is not None:
                clock.check(self.buffer)  # a wall-clock step re-stamps what is taken now
            token, items = self.buffer.take(max_items)
            if clock is not None and clock.steps:
                clock.restamp(first, items)
            return token, self.group(items)

    def group(self, items: list[Any]) -> list[tuple[Bucket, list[Event]]]:
        """Split taken items into runs per bucket, following set_bucket() markers."""
        if not self.buffer.markers:
            return [(self.bucket, items)] if items else []  # set_bucket() never called: one run
        groups: list[tuple[Bucket, list[Event]]] = []
        current: list[Event] = []
        for item in items:
            if type(item) is tuple:
                current.append(item)
            elif isinstance(item, Bucket):
                if current:
                    groups.append((self.bucket, current))
                    current = []
                self.bucket = item
        if current:
            groups.append((self.bucket, current))
        return groups

    def _spill_overflow(self, why: str) -> None:
        """Memory is full: move the oldest events to disk (down to 3/4 of the bound)."""
        count = len(self.buffer) - self.max_buffer * 3 // 4
        if count <= 0:
            return
        now = time.monotonic()
        if now - self._last_overflow_log > OVERFLOW_LOG_INTERVAL:
            self._last_overflow_log = now
            log.warning(
                "buffer full (max_buffer=%d, %s): moving the oldest %d events to the spool",
                self.max_buffer,
                why,
                count,
            )
        while count > 0:  # in files a replay loads whole: no split, no memory spike
            token, groups = self.take_grouped(min(count, OVERFLOW_FILE_EVENTS))
            count -= OVERFLOW_FILE_EVENTS
            try:
                for bucket, events in groups:
                    self.delivery.spill(bucket, events, last_error="memory buffer full")
            finally:
                self.buffer.done(token)

    def drain_to_spool(self) -> int:
        """After the deadline: put everything still buffered on disk; returns events handled."""
        count = 0
        while len(self.buffer):
            token, groups = self.take_grouped(OPEN_SPILL_EVENTS)
            try:
                for bucket, events in groups:
                    self.delivery.spill(bucket, events, last_error="not sent before close()")
                    count += len(events)
            finally:
                self.buffer.done(token)
        return count
