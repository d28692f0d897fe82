"""The relay: bucket streams in Redis → a consumer group → the normal delivery pipeline.

Each entry read is logged, with its own key, value and epoch, into one Streamer aimed at the
receiver (``set_bucket`` per stream), and acknowledged (XACK) only once ``flush()`` said it
was delivered or safely in the relay's own spool. So a relay killed at any point loses
nothing: what it had read but not acknowledged stays pending in the group, and it (on
restart, pending entries first) or another relay (XAUTOCLAIM after ``claim_idle_s``)
forwards it again. That unacknowledged window, at most two reads of ``batch`` entries (shared
by the streams) plus what was claimed in the same turn, is the only thing that can arrive
twice.

The next read is issued while the Streamer's worker delivers the previous one, so Redis
and the receiver work at the same time.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from .errors import ConfigError
from .relay_source import CLUSTER_IDLE_WAIT_S, Entry, Source

log = logging.getLogger("isstreamer")

COUNTERS = ("read", "forwarded", "acknowledged", "invalid", "claimed", "trimmed", "redis_errors")
MAX_ERROR_WAIT_S = 5.0  # the longest pause between attempts while Redis is unreachable
FLUSH_SLICE_S = 0.5  # flush() waits this long at a time, so a stop is seen between waits
WAIT_WARNING_S = 30.0  # a receiver this slow to take a read is worth a warning line
TRIM_INTERVAL_S = 1.0  # XTRIM at most this often per stream: it costs two lookups per group


@dataclass
class RelayOptions:
    """What the command line says; durations in seconds unless the name says otherwise."""

    batch: int = 1000  # entries per read, shared by the streams
    block_ms: int = 2000  # how long an idle read waits for new entries
    claim_idle_s: float = 60.0  # another consumer's entry idle this long is taken over
    trim: bool = False  # XTRIM MINID what every group has processed
    deadline_s: float = 10.0  # at a stop: time to deliver (or spool) what was read, then exit
    discover_interval_s: float = 5.0  # how often the bucket registry is read again
    stats_bucket: str = ""  # log the relay's own metrics to this bucket when set
    stats_interval_s: float = 60.0


class Relay:
    """Forwards one group's entries from a Source into a Streamer; see the module docstring."""

    def __init__(
        self, source: Source, streamer: Any, options: RelayOptions, *, stop: Any | None = None
    ) -> None:
        self.source = source
        self.streamer = streamer
        self.options = options
        self.stop = stop if stop is not None else threading.Event()
        self.counts: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.report_requested = False  # set by SIGUSR1; the loop logs stats() and clears it
        self._bucket: str | None = None  # the bucket the Streamer writes to now
        self._inflight: list[tuple[str, list[str]]] = []  # logged, not yet known delivered
        self._unacked: list[tuple[str, list[str]]] = []  # delivered, XACK not yet done
        self._trimmed_at: dict[str, float] = {}
        self._errors_in_row = 0
        self._warned_streams: set = set()

    # ---- the loop --------------------------------------------------------------------

    def run(self, *, once: bool = False) -> bool:
        """Relay until stopped (or, with ``once``, until nothing is left). True: all acked."""
        opts = self.options
        while not self.stop.is_set() and self._attempt(self.source.discover) is None:
            pass
        # Entries this consumer name read before a crash or a stop come first.
        while not self.stop.is_set():
            if self._unacked and not self._ack():
                continue  # re-reading "0" before the XACK went through would forward them twice
            rows = self._attempt(self.source.read, pending=True, count=opts.batch, block_ms=None)
            if rows is None:
                continue
            if not rows:
                break
            self._forward(rows)
            self._settle()
        next_discover = next_claim = next_stats = time.monotonic()
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_discover:
                self._attempt(self.source.discover)
                next_discover = now + opts.discover_interval_s
            claimed = 0
            if now >= next_claim:
                rows = (
                    self._attempt(
                        self.source.claim, idle_ms=int(opts.claim_idle_s * 1000), count=opts.batch
                    )
                    or []
                )
                self._settle()  # the claimed entries are settled on their own turn
                claimed = self._forward(rows)
                self.counts["claimed"] += claimed
                next_claim = now + max(opts.claim_idle_s / 2, 0.05)
            if opts.stats_bucket and now >= next_stats:
                self._log_stats()
                next_stats = now + opts.stats_interval_s
            if self.report_requested:
                self.report_requested = False
                log.warning("relay stats: %s", json.dumps(self.stats()))
            # While a read is being delivered the next one does not block: it only overlaps.
            block = None if once or self._inflight or claimed else opts.block_ms
            rows = self._attempt(self.source.read, pending=False, count=opts.batch, block_ms=block)
            self._settle()
            got = self._forward(rows or [])
            if self.source.cluster and block and rows == []:
                # An idle cluster pass does not block in Redis (see relay_source): pause here.
                self.stop.wait(min(opts.block_ms / 1000, CLUSTER_IDLE_WAIT_S))
            if once and rows is not None and not got and not claimed and not self._inflight:
                break
        return self._finish()

    def _attempt(self, func: Callable[..., Any], **kwargs: Any) -> Any:
        """func(**kwargs), or None after a Redis failure (logged, counted, paused for)."""
        import redis

        try:
            result = func(**kwargs)
        except (redis.RedisError, OSError) as exc:
            if refused_credentials(exc):
                # Waiting would not help: exit (2) and let the operator, or systemd's restart
                # after a password rotation, start again. What was read stays pending.
                raise ConfigError(
                    f"redis {self.source_name()} refused the credentials: "
                    f"{type(exc).__name__}: {str(exc)[:200]}"
                ) from None
            self.counts["redis_errors"] += 1
            self._errors_in_row += 1
            wait = min(MAX_ERROR_WAIT_S, 0.05 * 2 ** min(self._errors_in_row, 10))
            level = logging.WARNING if self._errors_in_row == 1 else logging.DEBUG
            log.log(
                level,
                "redis %s: %s: %s (trying again in %.1f s)",
                self.source_name(),
                type(exc).__name__,
                str(exc).split("\n")[0][:200],
                wait,
            )
            self.stop.wait(wait)
            return None
        if self._errors_in_row:
            log.info("redis %s answers again", self.source_name())
            self._errors_in_row = 0
        return result

    def source_name(self) -> str:
        return getattr(self.source, "address", "") or self.source.prefix + "*"

    # ---- forwarding and acknowledging --------------------------------------------------

    def _forward(self, rows: list[tuple[str, list[Entry]]]) -> int:
        """Log every entry into the Streamer, to its stream's bucket; the number of entries."""
        total = 0
        streamer = self.streamer
        for stream, entries in rows:
            bucket = self.source.bucket_of(stream)
            if bucket != self._bucket:
                streamer.set_bucket(self.source.buckets.get(bucket, bucket), bucket)
                self._bucket = bucket
            log_event = streamer.log
            bad = 0
            for _, fields in entries:
                if fields is None:  # trimmed away while pending: nothing left to forward
                    continue
                try:
                    log_event(fields["key"], json.loads(fields["value"]), float(fields["epoch"]))
                except (KeyError, ValueError, TypeError) as exc:
                    bad += 1
                    self._bad_entry(stream, exc)
            self.counts["read"] += len(entries)
            self.counts["forwarded"] += len(entries) - bad
            self.counts["invalid"] += bad
            total += len(entries)
            self._inflight.append((stream, [entry_id for entry_id, _ in entries]))
        return total

    def _bad_entry(self, stream: str, exc: Exception) -> None:
        # Not an isstreamer entry (another writer, a hand-made XADD): it can never be
        # delivered, so it is counted and acknowledged with one error line per stream.
        if stream not in self._warned_streams:
            self._warned_streams.add(stream)
            log.error(
                "%s: an entry without key, JSON value and epoch is dropped (%s: %s); "
                "the count is in stats()['invalid']",
                stream,
                type(exc).__name__,
                exc,
            )

    def _settle(self) -> bool:
        """Wait until what was logged is delivered or spooled, then XACK it. False: not yet."""
        if self._inflight:
            waited_s = 0.0
            # Short waits, so a stop request is seen at once even while the receiver hangs.
            while not self.streamer.flush(FLUSH_SLICE_S):
                if self.stop.is_set():
                    return False  # _finish() settles it within the exit deadline
                waited_s += FLUSH_SLICE_S
                if waited_s % WAIT_WARNING_S < FLUSH_SLICE_S:
                    log.warning(
                        "the receiver has not taken the last read after %.0f s; "
                        "waiting on (nothing is acknowledged meanwhile)",
                        waited_s,
                    )
            self._unacked.extend(self._inflight)
            self._inflight = []
        return self._ack()

    def _ack(self) -> bool:
        while self._unacked:
            stream, ids = self._unacked[0]
            acked = self._attempt(self.source.ack, stream=stream, ids=ids)
            if acked is None:
                return False  # kept: acknowledged on the next turn
            self._unacked.pop(0)
            self.counts["acknowledged"] += len(ids)
            if self.options.trim:
                self._trim(stream)
        return True

    def _trim(self, stream: str) -> None:
        now = time.monotonic()
        if now - self._trimmed_at.get(stream, float("-inf")) < TRIM_INTERVAL_S:
            return
        self._trimmed_at[stream] = now
        removed = self._attempt(self.source.trim, stream=stream)
        self.counts["trimmed"] += removed or 0

    def _finish(self) -> bool:
        """At the end: deliver or spool what was read, acknowledge it; True when all acked."""
        if self._inflight:
            dropped = self.streamer.stats()["dropped"]
            if not self.streamer.flush(self.options.deadline_s / 2):
                # close() spills whatever it cannot deliver by its deadline: on disk is safe.
                self.streamer.close(self.options.deadline_s / 2)
                if self.streamer.stats()["dropped"] != dropped:
                    log.error("events were dropped at exit; their entries stay pending")
                    return False
            self._unacked.extend(self._inflight)
            self._inflight = []
        if self.options.trim:
            self._trimmed_at.clear()  # a last trim, whatever the interval
        return self._ack()

    # ---- metrics -----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The relay's counters, the delivery's stats() and per stream pending and lag."""
        result: dict[str, Any] = dict(self.counts)
        result["delivery"] = self.streamer.stats()
        result["streams"] = self._attempt(self.source.status) or []
        return result

    def _log_stats(self) -> None:
        stats = self.stats()
        self.streamer.set_bucket(self.options.stats_bucket, self.options.stats_bucket)
        self._bucket = self.options.stats_bucket
        for name in ("forwarded", "acknowledged", "invalid", "claimed", "redis_errors"):
            self.streamer.log(f"relay_{name}", stats[name])
        for row in stats["streams"]:
            bucket = self.source.bucket_of(row["stream"])
            for name in ("pending", "lag"):
                if row.get(name) is not None:
                    self.streamer.log(f"{bucket}_{name}", row[name])


def refused_credentials(exc: Exception) -> bool:
    """A wrong or missing password, or a user without the rights: never fixed by waiting."""
    import redis.exceptions as errors

    types = tuple(
        getattr(errors, name)
        for name in ("AuthenticationError", "AuthorizationError", "NoPermissionError")
        if hasattr(errors, name)
    )
    code = str(exc).split(" ", 1)[0]
    return isinstance(exc, types) or code in ("NOAUTH", "WRONGPASS", "NOPERM")
