"""Getting each batch to the sink or, failing that, to the spool.

Owns the decisions that follow a SendResult: retry, split, quarantine, spill; the circuit
that stops a retry storm once the sink is down (new batches go straight to disk, one probe
at growing intervals detects recovery); and the replay of spilled files once it is healthy.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable, Deque, List, Optional, Sequence, Set, Tuple

from .retry import RetryPolicy, next_probe_interval, send_with_retry
from .sinks.base import SENT, Bucket, Event, Outcome, SendResult, Sink
from .spool import CorruptSpillFile, SpillBatch, Spool, event_count
from .stats import Stats

log = logging.getLogger("isstreamer")

PACE_SLEEP_MAX = 2.0  # seconds: a longer rate-limit pause opens the circuit instead of blocking
RESCAN_INTERVAL = 60.0  # seconds between looks for spill files other processes left


class Pending:
    """The events of one batch not yet stored; a partial success shrinks it.

    A sink may answer that some events were stored and others not (``SendResult.failed``);
    only those are sent again, so a partial failure never repeats what succeeded.
    """

    def __init__(self, events: Sequence[Event]) -> None:
        self.events: List[Event] = list(events)
        self.stored = 0  # events of this batch the receiver has stored so far

    def absorb(self, result: SendResult) -> SendResult:
        """Account for one answer; returns it as the answer for what is still pending."""
        if result.ok:
            self.stored += len(self.events)
            self.events = []
            return result
        if result.failed is None:
            return result
        indices = sorted({i for i in result.failed if 0 <= i < len(self.events)})
        self.stored += len(self.events) - len(indices)
        self.events = [self.events[i] for i in indices]
        if not self.events:  # "failed" named no event of the batch: all of it was stored
            return dataclasses.replace(SENT, retry_after=result.retry_after)
        return dataclasses.replace(result, failed=None)


class Delivery:
    """One sink, one spool, one circuit. Used by a single worker thread at a time."""

    def __init__(self, sink: Sink, spool: Optional[Spool], stats: Stats, policy: RetryPolicy, *,
                 stop_event: threading.Event, replay_batch: int = 500,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sink = sink
        self.spool = spool
        self.stats = stats
        self.policy = policy
        self.replay_batch = max(1, replay_batch)
        self.stop_event = stop_event
        self._clock = clock
        self._sleep = policy.sleep or self._wait
        self.open = False  # the circuit: True while the sink is considered down
        self.probe_at = 0.0
        self._probe_interval = 0.0
        self._pace_until = 0.0
        self._lock = threading.Lock()
        # The runs of the take being delivered, as [bucket, events, state]: state None while
        # not yet handled, then "done", "spilled", or the path close() rescued it to.
        self._pending: List[list] = []
        self._replay_inflight = False  # a replay chunk is on the wire: close() must not give it back
        self._replay_queue: Deque[Path] = deque()
        self._replaying: Optional[SpillBatch] = None
        self._replay_pos = 0
        self._scan_needed = spool is not None
        self._last_scan = float("-inf")
        self._skip: Set[str] = set()
        self.drained = threading.Event()  # set while the spool holds nothing this sink can send
        self.deadline: Optional[float] = None  # monotonic; set while flush() runs on the caller's thread

    def _wait(self, seconds: float) -> None:
        if self.deadline is not None:  # a flush() on the caller's thread: never sleep past it
            seconds = min(seconds, max(0.0, self.deadline - self._clock()))
        self.stop_event.wait(seconds)  # close() sets the event: a backoff ends at once

    def stopping(self) -> bool:
        if self.deadline is not None and self._clock() >= self.deadline:
            return True  # a flush() on the caller's thread ran out of time: no more retries
        return self.stop_event.is_set()

    # ---- live batches -------------------------------------------------------------------

    def deliver(self, bucket: Bucket, events: Sequence[Event]) -> None:
        """Send one batch, or spill it; never raises for sink trouble."""
        self.deliver_groups([(bucket, events)])

    def deliver_groups(self, groups: Sequence[Tuple[Bucket, Sequence[Event]]]) -> None:
        """Deliver the runs of one take in order; close() can rescue all that are not done."""
        entries = [[bucket, events, None] for bucket, events in groups if events]
        with self._lock:
            self._pending = entries
        try:
            for entry in entries:
                self._deliver_entry(entry)
        finally:
            with self._lock:
                self._pending = []

    def _deliver_entry(self, entry: list) -> None:
        bucket, events = entry[0], entry[1]
        with self._lock:
            if entry[2] is not None:
                return  # close() put it on disk before we got to it
            spill = self.open and self._clock() < self.probe_at
            if spill:
                entry[2] = "spilled"
        if spill:
            self.spill(bucket, events, last_error=self.stats.last_error)
            return
        pending = Pending(events)
        result = self._send(bucket, pending, probe=self.open)
        with self._lock:
            rescued, entry[2] = entry[2], "done"
        if rescued is not None:  # close() already put this batch on disk
            if result.ok and isinstance(rescued, Path) and self.spool is not None:
                self.spool.delete(rescued)
                self.stats.add("spilled", -len(events))
                self.stats.add("sent", len(events))
            return
        self._settle(bucket, pending, result)

    def _send(self, bucket: Bucket, pending: Pending, probe: bool = False) -> SendResult:
        """Send what is pending (with retries unless probing); the answer for what is left."""
        self._wait_pace()

        def once() -> SendResult:
            return pending.absorb(self._send_once(bucket, pending.events))

        if probe or self.stopping():
            return once()  # a probe is one attempt; the circuit retries
        return send_with_retry(once, self.policy, self._sleep, self.stopping, self._on_retry)

    def _send_once(self, bucket: Bucket, events: Sequence[Event]) -> SendResult:
        try:
            return self.sink.send(bucket, events)
        except Exception as exc:  # a sink that breaks the contract must not lose the batch
            log.debug("sink %s raised", self.sink.address, exc_info=True)
            return SendResult(Outcome.RETRY, message=f"sink raised {type(exc).__name__}")

    def _on_retry(self, result: SendResult, wait: float) -> None:
        self.stats.add("retried")
        log.info("send failed (%s); retrying in %.1f s", result.message or result.outcome.value, wait)

    def _settle(self, bucket: Bucket, pending: Pending, result: SendResult) -> None:
        if pending.stored:
            self.stats.add("sent", pending.stored)
        events = pending.events
        outcome = result.outcome
        if outcome is Outcome.OK:
            self.stats.add("batches")
            self._healthy(result)
        elif outcome is Outcome.TOO_LARGE:
            if len(events) == 1:
                self.quarantine(bucket, events, "413: a single event is larger than the receiver accepts")
                return
            half = len(events) // 2
            for part in (events[:half], events[half:]):
                sub = Pending(part)
                self._settle(bucket, sub, self._send(bucket, sub))
        elif outcome is Outcome.BAD:
            self.quarantine(bucket, events, result.message)
        else:
            self._failed(result)
            self.spill(bucket, events, attempts=1, last_error=result.message)

    def _wait_pace(self) -> None:
        wait = self._pace_until - self._clock()
        if wait > 0 and not self.stopping():
            self._sleep(wait)

    def _healthy(self, result: SendResult) -> None:
        if self.open:
            log.warning("%s is reachable again; replaying spilled events", self.sink.address)
            self.open = False
            self._probe_interval = 0.0
            self._scan_needed = True
        if result.retry_after:  # rate-limit headers asked us to slow down
            if result.retry_after <= PACE_SLEEP_MAX:
                self._pace_until = self._clock() + result.retry_after
            else:
                pause = min(result.retry_after, self.policy.max_retry_after)
                self.open, self.probe_at = True, self._clock() + pause

    def _failed(self, result: SendResult) -> None:
        first = not self.open
        self.open = True
        if result.retry_after is not None:
            interval = min(result.retry_after, self.policy.max_retry_after)
        else:
            interval = self._probe_interval = next_probe_interval(self.policy, self._probe_interval)
        self.probe_at = self._clock() + interval
        self.stats.error(result.message or result.outcome.value)
        if first:
            where = f"spilling to {self.spool.directory}" if self.spool else "no spool: events are dropped"
            level = logging.ERROR if result.outcome is Outcome.AUTH else logging.WARNING
            log.log(level, "cannot deliver to %s: %s; %s and probing again in %.1f s (at most every %g s)",
                    self.sink.address, result.message or result.outcome.value, where, interval,
                    self.policy.probe_max)

    # ---- spill and quarantine -----------------------------------------------------------

    def spill(self, bucket: Bucket, events: Sequence[Event], attempts: int = 0, last_error: str = "") -> Optional[Path]:
        """Put a batch on disk; count it as dropped (and say so) when that is impossible."""
        if not events:
            return None
        if self.spool is not None:
            try:
                path = self.spool.write(bucket, events, sink=self.sink.address, attempts=attempts, last_error=last_error)
            except OSError as exc:
                log.error("cannot write spill file in %s (%s): %d events lost", self.spool.directory, exc, len(events))
            else:
                self.stats.add("spilled", len(events))
                self.drained.clear()
                self._scan_needed = True
                return path
        else:
            log.error("no spool configured: %d undeliverable events dropped", len(events))
        self.stats.add("dropped", len(events))
        return None

    def quarantine(self, bucket: Bucket, events: Sequence[Event], reason: str) -> None:
        log.error("receiver rejected a batch of %d events to bucket %r: %s", len(events), bucket.key, reason)
        self.stats.add("quarantined", len(events))
        if self.spool is not None:
            try:
                self.spool.quarantine_batch(bucket, events, sink=self.sink.address, reason=reason)
            except OSError as exc:
                log.error("cannot write to the quarantine (%s): %d events lost", exc, len(events))

    def rescue_inflight(self) -> None:
        """From close() past its deadline: put the batches the worker has not finished on disk."""
        with self._lock:
            for entry in self._pending:
                if entry[2] is None:
                    bucket, events = entry[0], entry[1]
                    entry[2] = self.spill(bucket, events, last_error="close() deadline passed while sending") or "lost"

    # ---- replay -------------------------------------------------------------------------

    def has_replay_work(self) -> bool:
        if self.spool is None or self.stopping() or (self.open and self._clock() < self.probe_at):
            return False
        if self._replaying is not None or self._replay_queue or self._scan_needed:
            return True
        if self._clock() - self._last_scan > RESCAN_INTERVAL:
            return True
        self.drained.set()
        return False

    def request_replay(self) -> None:
        """Ask for a fresh look at the spool now, even while the circuit is open."""
        self.drained.clear()
        self._scan_needed = True
        if self.open:
            self.probe_at = self._clock()

    def replay_step(self) -> bool:
        """Send one chunk of spilled events; False when there was nothing to send."""
        if self.stopping():
            return False  # closing: a claimed file would be left behind half-replayed
        batch = self._replaying or self._claim_next()
        if batch is None:
            return False
        assert self.spool is not None
        chunk = batch.events[self._replay_pos:self._replay_pos + self.replay_batch]
        pending = Pending(chunk)
        self._replay_inflight = True
        try:
            result = self._send(batch.bucket, pending, probe=self.open)
        finally:
            self._replay_inflight = False
        if pending.stored and pending.events:
            # Partly stored: from now on the file holds only what was not, so neither a retry
            # nor a release repeats the stored events.
            self.stats.add("replayed", pending.stored)
            end = self._replay_pos + len(chunk)
            batch.events = batch.events[:self._replay_pos] + pending.events + batch.events[end:]
            chunk = pending.events
        if result.outcome is Outcome.OK:
            self._replay_pos += len(chunk)
            self.stats.add("replayed", len(chunk))
            self.stats.add("batches")
            self._healthy(result)
            if self._replay_pos >= len(batch.events):
                self.spool.delete(batch.path)
                self._replaying = None
        elif result.outcome is Outcome.TOO_LARGE and len(chunk) > 1:
            self.replay_batch = max(1, len(chunk) // 2)
        elif result.outcome in (Outcome.BAD, Outcome.TOO_LARGE):
            self.quarantine(batch.bucket, chunk, result.message)
            self._replay_pos += len(chunk)
            if self._replay_pos >= len(batch.events):
                self.spool.delete(batch.path)
                self._replaying = None
        else:
            self._failed(result)
            self.release_replay(result.message)
        if self.stopping():
            self.release_replay()  # close() left this file to us while its chunk was on the wire
        return True

    def release_replay(self, last_error: str = "") -> Optional[Path]:
        """Give back the file being replayed, keeping only what was not yet delivered.

        Returns the claimed path that was kept instead when a chunk of it is still being sent
        (the worker gives it back once the answer is in), else None.
        """
        if self._replay_inflight and self._replaying is not None:
            return self._replaying.path
        batch, self._replaying = self._replaying, None
        if batch is not None and self.spool is not None:
            try:
                self.spool.release(batch, batch.events[self._replay_pos:], last_error)
            except OSError as exc:
                log.error("cannot give back spill file %s: %s", batch.path.name, exc)
        return None

    def _claim_next(self) -> Optional[SpillBatch]:
        assert self.spool is not None
        while True:
            if not self._replay_queue:
                if not self._scan_needed and self._clock() - self._last_scan <= RESCAN_INTERVAL:
                    self.drained.set()
                    return None
                self._scan_needed = False
                self._last_scan = self._clock()
                self.spool.reclaim_stale()
                self._replay_queue.extend(p for p in self.spool.files() if p.name not in self._skip)
                if not self._replay_queue:
                    self.drained.set()
                    return None
            path = self._replay_queue.popleft()
            claimed = self.spool.claim(path)
            if claimed is None:
                continue  # another sender has it
            try:
                batch = self.spool.load(claimed)
            except CorruptSpillFile as exc:
                self.spool.quarantine(claimed, f"unreadable spill file: {exc}")
                self.stats.add("quarantined", event_count(path))
                continue
            if batch.sink != self.sink.address:
                self._skip.add(path.name)
                self.spool.release(batch)
                continue
            self._replaying, self._replay_pos = batch, 0
            return batch

    def replay_all(self, deadline: Optional[float] = None) -> bool:
        """Replay until the spool is empty, the sink fails or the deadline; True when empty."""
        self.request_replay()  # asked by hand: try now, whatever the circuit says
        while deadline is None or self._clock() < deadline:
            if self.stopping() or (self.open and self._clock() < self.probe_at):
                break
            if not self.replay_step():
                return True
        self.release_replay()
        return False

    def pending_files(self) -> List[Path]:
        return self.spool.files() if self.spool is not None else []
