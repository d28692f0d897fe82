"""Getting each batch to the sink or, failing that, to the spool.

Delivery settles batches: it sends with retries, re-sends only what a partial success left,
splits what is too large, isolates a poison event by bisection, quarantines what the
receiver refuses, and spills what cannot be delivered now. Each call returns a Report of
what became of its events. The circuit (circuit.py) decides when to stop trying; the
replay of spilled files (replayer.py) reuses the same settling.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

from .circuit import Circuit
from .clock import ClockWatch
from .model import Bucket, Event, Outcome, SendResult
from .poison import BISECT_SENDS_MAX, PoisonSearch
from .replayer import Replayer
from .report import Account, Pending, Report, Tally, describe
from .retry import RetryPolicy, send_with_retry
from .sinks.base import Sink
from .spool import Spool, event_count
from .stats import Stats

log = logging.getLogger("isstreamer")


class Delivery(PoisonSearch):
    """One sink, one spool, one circuit. Used by a single worker thread at a time."""

    def __init__(
        self,
        sink: Sink,
        spool: Spool | None,
        stats: Stats,
        policy: RetryPolicy,
        *,
        stop_event: threading.Event,
        replay_batch: int = 500,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.spool = spool
        self.stats = stats
        self.policy = policy
        self.stop_event = stop_event
        self._clock = clock
        self._sleep = policy.sleep or self._wait
        self.circuit = Circuit(policy, clock)
        self._lock = threading.Lock()
        # The runs of the take being delivered, as [bucket, events, state]: state None while
        # not yet handled, then "done", "spilled", or the path close() rescued it to.
        self._pending: list[list] = []
        self.deadline: float | None = None  # monotonic; flush()/close() on their way out
        self.progress = threading.Condition()  # notified after each settled batch or chunk
        self.waiters = 0  # threads waiting on progress (flush() or close()), under its lock
        self.replayer = Replayer(self, replay_batch)
        self.clock: ClockWatch | None = None  # re-stamps default epochs after a clock step
        self.drained = self.replayer.drained

    # The circuit's state, read by the worker and the replay command.
    @property
    def open(self) -> bool:
        return self.circuit.open

    @property
    def probe_at(self) -> float:
        return self.circuit.probe_at

    def _wait(self, seconds: float) -> None:
        if self.deadline is not None:  # flush() or close() is waiting: never sleep past it
            seconds = min(seconds, max(0.0, self.deadline - self._clock()))
        self.stop_event.wait(seconds)  # close() sets the event: a backoff ends at once

    def stopping(self) -> bool:
        if self.deadline is not None and self._clock() >= self.deadline:
            return True  # flush() or close() ran out of time: no more retries
        return self.stop_event.is_set()

    def notify_progress(self) -> None:
        if self.waiters:  # read without the lock: a waiter looks again within a second anyway
            with self.progress:
                self.progress.notify_all()

    # ---- live batches -------------------------------------------------------------------

    def deliver(self, bucket: Bucket, events: Sequence[Event]) -> Report:
        """Send one batch, or spill it; never raises for sink trouble."""
        return self.deliver_groups([(bucket, events)])

    def deliver_groups(self, groups: Sequence[tuple[Bucket, Sequence[Event]]]) -> Report:
        """Deliver the runs of one take in order; close() can rescue all that are not done."""
        entries = [[bucket, events, None] for bucket, events in groups if events]
        with self._lock:
            self._pending = entries
        report = Report()
        try:
            for entry in entries:
                report = report + self._deliver_entry(entry)  # one entry unless set_bucket()
        finally:
            with self._lock:
                self._pending = []
            self.notify_progress()
        return report

    def _deliver_entry(self, entry: list) -> Report:
        bucket, events = entry[0], entry[1]
        with self._lock:
            if entry[2] is not None:
                return Report()  # close() put it on disk before we got to it (counted there)
            spill = self.circuit.blocks()
            if spill:
                entry[2] = "spilled"
        if spill:
            return self.spill(bucket, events, last_error=self.stats.last_error)
        pending = Pending(events)
        result = self.send(bucket, pending, probe=self.circuit.probing())
        with self._lock:
            rescued, entry[2] = entry[2], "done"
        if rescued is not None:  # close() already put this batch on disk
            if result.ok and isinstance(rescued, tuple) and self.spool is not None:
                path, batch_id = rescued
                self.spool.delete(path)
                self.stats.left_file(batch_id, len(events), "sent")
                return Report(sent=len(events))
            return Report(spilled=len(events))
        tally = Tally(self.stats.add)
        left, last = self.resolve(bucket, pending, result, tally)
        if left:
            self.failed(last)
            return tally.report() + self.spill(bucket, left, attempts=1, last_error=last.message)
        return tally.report()

    def send(self, bucket: Bucket, pending: Pending, probe: bool = False) -> SendResult:
        """Send what is pending (with retries unless probing); the answer for what is left."""
        wait = self.circuit.pace_wait_s()
        if wait > 0 and not self.stopping():
            self._sleep(wait)

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
        log.info("send failed (%s); retrying in %.1f s", describe(result), wait)

    def resolve(
        self, bucket: Bucket, pending: Pending, result: SendResult, account: Account
    ) -> tuple[list[Event], SendResult]:
        """Act on an answer: count, split, bisect, quarantine. Returns what is left undelivered
        (RETRY or AUTH: for the spool) and the answer that left it."""
        account("sent", pending.stored)
        events, outcome = pending.events, result.outcome
        if outcome is Outcome.OK:
            self.stats.add("batches")
            if self.circuit.succeeded(result):
                log.warning("%s is reachable again; replaying spilled events", self.sink.address)
                self.replayer.request(probe=False)
            return [], result
        # A batch too large, or one the sink could not encode (BAD with no answer from a
        # receiver), is split: the parts that pass are delivered, a lone bad event quarantined.
        if outcome is Outcome.TOO_LARGE or outcome is Outcome.BAD and result.status is None:
            if outcome is Outcome.BAD and len(events) == 1:
                self.quarantine(bucket, events, describe(result), account)
                return [], result
            if len(events) == 1:
                self.quarantine(
                    bucket,
                    events,
                    "413: a single event is larger than the receiver accepts",
                    account,
                )
                return [], result
            half = len(events) // 2
            left: list[Event] = []
            last = result
            for part in (events[:half], events[half:]):
                sub = Pending(part)
                rest, answer = self.resolve(bucket, sub, self.send(bucket, sub), account)
                left.extend(rest)
                last = answer if rest else last
            return left, last
        if outcome is Outcome.BAD:
            self.quarantine(bucket, events, describe(result), account)
            return [], result
        if self._looks_poisoned(result, events):
            budget = [BISECT_SENDS_MAX]
            left, last, _ = self._bisect(bucket, events, result, account, budget, healthy=False)
            return left, last
        return events, result

    def failed(self, result: SendResult) -> None:
        """A batch was given up on: open the circuit (and say so once per outage)."""
        self.stats.error(result.message or result.outcome.value)
        if self.circuit.failed(result):
            where = (
                f"spilling to {self.spool.directory}"
                if self.spool
                else "no spool: events are dropped"
            )
            level = logging.ERROR if result.outcome is Outcome.AUTH else logging.WARNING
            why = describe(result)
            # "cannot reach <address>: connection refused" names the receiver already.
            target = "" if self.sink.address in why else f" to {self.sink.address}"
            log.log(
                level,
                "cannot deliver%s: %s; %s and probing again in %.1f s (at most every %g s)",
                target,
                why,
                where,
                self.circuit.probe_at - self._clock(),
                self.policy.probe_max,
            )

    # ---- spill and quarantine -----------------------------------------------------------

    def spill(
        self, bucket: Bucket, events: Sequence[Event], attempts: int = 0, last_error: str = ""
    ) -> Report:
        """Put this Streamer's batch on disk; count it as dropped (and say so) when impossible."""
        if not events:
            return Report()
        written = self._spill_own(bucket, events, attempts=attempts, last_error=last_error)
        if written is None:
            return Report(dropped=len(events))
        self.replayer.spilled()
        return Report(spilled=len(events))

    def _spill_own(
        self, bucket: Bucket, events: Sequence[Event], **fields: Any
    ) -> tuple[Path, str] | None:
        """Write a spill file of this Streamer and enter it in the ledger: (path, batch id).

        None, with the events counted as dropped and an error log, when there is no spool
        or the write fails for any reason.
        """
        batch_id = uuid.uuid4().hex[:16]
        if self.spool is None:
            log.error("no spool configured: %d undeliverable events dropped", len(events))
        else:
            try:
                path = self.spool.write(
                    bucket, events, sink=self.sink.address, batch_id=batch_id, **fields
                )
            except Exception as exc:  # OSError, or anything a broken disk or encoder raises
                log.error(
                    "cannot write spill file in %s (%s): %d events lost",
                    self.spool.directory,
                    exc,
                    len(events),
                )
            else:
                self.stats.spilled(batch_id, path.name, len(events))
                if self.clock is not None:
                    self.clock.spilled(batch_id, events)
                return path, batch_id
        self.stats.add("dropped", len(events))
        return None

    def quarantine(
        self, bucket: Bucket, events: Sequence[Event], reason: str, account: Account
    ) -> None:
        """Set events aside with the receiver's answer; a failed write is a counted, logged loss."""
        log.error("receiver rejected %d event(s) to bucket %r: %s", len(events), bucket.key, reason)
        if self.spool is None:
            account("dropped", len(events))
            return
        try:
            self.spool.quarantine_batch(bucket, events, sink=self.sink.address, reason=reason)
        except Exception as exc:
            log.error("cannot write to the quarantine (%s): %d events lost", exc, len(events))
            account("dropped", len(events))
            return
        account("quarantined", len(events))

    def rescue_inflight(self) -> None:
        """From close() past its deadline: put the batches the worker has not finished on disk."""
        with self._lock:
            for entry in self._pending:
                if entry[2] is None:
                    bucket, events = entry[0], entry[1]
                    written = self._spill_own(
                        bucket, events, last_error="close() deadline passed while sending"
                    )
                    entry[2] = written or "lost"

    def evicted(self, files: int, events: int) -> None:
        """The spool's quota evicted files: own events among them are dropped, others apart."""
        own = 0
        if self.spool is not None:
            replaying = self.replayer.current_name()
            for name in self.stats.own_names():
                if name != replaying and not (self.spool.directory / name).exists():
                    own += self.stats.gone(name, event_count(Path(name)), "dropped")
        self.stats.add("dropped_other", max(0, events - own))

    # ---- replay (replayer.py) -------------------------------------------------------------

    def has_replay_work(self) -> bool:
        return self.replayer.has_work()

    def replay_step(self) -> bool:
        """Send one chunk of spilled events; False when there was nothing to send."""
        return self.replayer.step() is not None

    def request_replay(self) -> None:
        """Ask for a fresh look at the spool now, even while the circuit is open."""
        self.replayer.request(probe=True)

    def release_replay(self, last_error: str = "") -> Path | None:
        return self.replayer.release(last_error)

    def replay_all(self, deadline: float | None = None) -> bool:
        return self.replayer.replay_all(deadline)
