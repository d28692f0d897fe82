"""flush(), close() and replay(): the caller's side of the delivery contract (a mixin).

The Streamer hands events to its worker; these methods wait, by a deadline on the monotonic
clock, until the worker (or, with ``use_async=False``, this thread) has settled them: delivered,
on disk while the sink is failing, quarantined or dropped. What each returns is said once in
docs/architecture.md ("The delivery contract").
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Callable, cast

from . import lifecycle
from .delivery import Delivery

if TYPE_CHECKING:
    from .buffer import Buffer
    from .retry import RetryPolicy
    from .sinks.base import Sink
    from .spool import Spool
    from .stats import Stats, StatsDict
    from .streamer import Streamer
    from .worker import Worker

log = logging.getLogger("isstreamer")

CLOSE_RESERVE_S = 0.5  # of close()'s budget, kept for stopping the worker and spilling


class SettleMethods:
    """The Streamer's flush, close and replay, over its buffer, worker and delivery."""

    Async: bool
    _buffer: Buffer
    _worker: Worker
    _delivery: Delivery
    _spool: Spool | None
    _stats: Stats
    _stop: threading.Event
    _sink: Sink
    _retired_sinks: list[Sink]
    _user_sink: Sink | None
    _make_sink: Callable[[], Sink]
    _policy: RetryPolicy
    _batch_size: int
    _closed: bool
    _close_lock: threading.Lock
    _close_result: bool | None
    _losses_seen: int

    def stats(self) -> StatsDict:
        raise NotImplementedError  # Streamer's

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event logged before the call was accepted by the receiver.

        Only while the sink is failing (the circuit is open) does an event safely on disk
        count as handled; after True, even ``kill -9`` loses nothing. False at the deadline
        (``timeout`` seconds), or when events were quarantined or dropped since the previous
        flush() or close() (see stats()).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        done = self._settle_buffer(deadline) and self._settle_backlog(deadline, while_open=False)
        return self._no_new_losses() and done

    def _settle_buffer(self, deadline: float | None) -> bool:
        if not self.Async or self._stop.is_set():
            delivery, closing = self._delivery, self._closed
            if not closing:
                delivery.deadline = deadline  # retries on this thread end at the deadline too
            try:
                return self._worker.ship_until(deadline)  # on this thread
            finally:
                if not closing:
                    delivery.deadline = None
        mark = self._buffer.mark()
        self._worker.request_flush(mark)
        return self._buffer.wait_handled(mark, deadline)

    def _settle_backlog(self, deadline: float | None, while_open: bool) -> bool:
        on_thread = not self.Async or self._stop.is_set()
        wake = None if on_thread else lambda: self._worker.request_flush(self._buffer.mark())
        return self._delivery.replayer.wait_own(deadline, while_open, wake, self._stop)

    def _no_new_losses(self) -> bool:
        losses = self._stats.losses()
        seen, self._losses_seen = self._losses_seen, losses
        return losses == seen

    def close(self, timeout: float = 10.0) -> bool:
        """Stop taking events; spend up to ``timeout`` seconds delivering; spill the rest.

        Delivers what is buffered and what this Streamer spilled, with retries and the
        probes of a failing sink on their schedule, never past the deadline. Whatever is left
        then goes to the spool. Returns True only when every event logged was delivered;
        otherwise False, with one log line saying how many events are in the spool (sent by
        the next run or ``isstreamer replay``), quarantined (see the quarantine directory)
        or lost. Safe to call more than once.
        """
        with self._close_lock:
            if self._closed:
                return bool(self._close_result)
            self._closed = True
        deadline = time.monotonic() + timeout
        # Delivering stops a little early, to leave time to stop the worker and spill the rest.
        delivering = deadline - min(CLOSE_RESERVE_S, timeout / 10)
        delivery = self._delivery
        delivery.deadline = delivering  # retries and backoff waits end there
        try:
            if self._settle_buffer(delivering):
                self._settle_backlog(delivering, while_open=True)
        except Exception:  # a sink bug on the sync path must not stop the cleanup below
            log.exception("flush during close failed")
        if not self._worker.stop(deadline):
            delivery.rescue_inflight()
            log.warning("close(): the receiver did not answer within %.1f s", timeout)
        self._worker.drain_to_spool()
        sending = delivery.release_replay()  # a file still on the wire stays claimed
        if self._spool is not None:
            try:
                self._spool.release_own_claims(keep=sending)
            except OSError:
                pass
        for sink in [*self._retired_sinks, self._sink]:
            try:
                sink.close()
            except Exception:
                log.debug("sink close failed", exc_info=True)
        lifecycle.unregister(cast("Streamer", self))  # the mixin is only ever a Streamer
        self._close_result = self._closing_report()
        return self._close_result

    def _closing_report(self) -> bool:
        stats = self.stats()
        self._no_new_losses()
        missing = stats["logged"] - stats["sent"] - stats["replayed"]
        if missing:
            log.warning(
                "close(): %d of %d events were not delivered: %d in the spool %s (sent by "
                "the next run or `isstreamer replay`), %d quarantined, %d lost (dropped)",
                missing,
                stats["logged"],
                stats["on_disk"],
                self._spool.directory if self._spool else "(none)",
                stats["quarantined"],
                stats["dropped"],
            )
        return missing == 0

    def replay(self, timeout: float | None = None) -> bool:
        """Replay the spool now; True when nothing is left for this receiver.

        With a running worker the worker does it (so the two never compete for files and a
        file the worker already claimed counts as pending); otherwise it runs on this thread.
        """
        if self._spool is None:
            return True
        if self.Async and not self._closed:
            self._delivery.request_replay()
            self._worker.wake_up()
            return self._delivery.drained.wait(timeout) and not self._delivery.open
        deadline = None if timeout is None else time.monotonic() + timeout
        sink = self._make_sink() if self._user_sink is None else self._user_sink
        delivery = Delivery(
            sink,
            self._spool,
            self._stats,
            self._policy,
            stop_event=threading.Event(),
            replay_batch=max(self._batch_size, 500),
        )
        try:
            return delivery.replay_all(deadline)
        finally:
            if sink is not self._sink and sink is not self._user_sink:
                sink.close()
