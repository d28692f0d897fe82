"""The public Streamer: ISStreamer's API, with a bounded buffer and one background worker."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from . import events as _events
from . import lifecycle
from .aio import AsyncMethods
from .api_types import Epoch, Key, LogValue, UserSink
from .attributes import LegacyAttributes, check_bucket_key
from .batchlog import LoggedSink
from .buffer import Buffer
from .clock import ClockWatch
from .compat import DEFAULT_BUFFER_SIZE, DEFAULT_FLUSH_INTERVAL, apply_debug_level, given
from .config import load_settings
from .delivery import Delivery
from .errors import ConfigError
from .model import INT_MAX, INT_MIN, MAX_KEY_CHARS, MAX_STRING_CHARS, Bucket, Event
from .redact import redact_key
from .retry import RetryPolicy
from .settle import SettleMethods
from .sinks.base import Sink, as_sink
from .sinks.factory import needs_access_key, sink_factory
from .spool import Spool
from .stats import Stats, StatsDict
from .worker import Worker

log = logging.getLogger("isstreamer")
_time = time.time
# Module globals for the fast path in log(): the limits are written once, in isstreamer.model.
_INT_MIN, _INT_MAX = INT_MIN, INT_MAX
_MAX_KEY, _MAX_STRING = MAX_KEY_CHARS, MAX_STRING_CHARS
WARN_KEYS_MAX = 1000  # distinct keys remembered for "warn once per key"
# Events held in memory before the worker moves the oldest to disk: a burst of this many
# makes no disk round trip. About 120 bytes an event on 64-bit CPython and 68 on a 32-bit
# Pi (README, "Memory"), so 200,000 events is 24 MB and 14 MB.
DEFAULT_MAX_BUFFER = 200_000


class Streamer(LegacyAttributes, SettleMethods, AsyncMethods):
    """Streams events to Initial State (or a collector, Redis, a CSV file) without blocking."""

    def __init__(
        self,
        bucket_name: str = "",
        bucket_key: str = "",
        access_key: str = "",
        ini_file_location: str | None = None,
        debug_level: int = 0,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        offline: bool | None = None,
        use_async: bool = True,
        *,
        api_base: str | None = None,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        max_buffer: int | None = None,
        spill_dir: str | None = None,
        spill_max_bytes: int | None = None,
        timeout: float = 10.0,
        strict: bool = False,
        sink: UserSink = None,
        retry_policy: RetryPolicy | None = None,
        fix_clock_steps: bool = True,
    ) -> None:
        apply_debug_level(debug_level)
        self._debug_level = int(debug_level)
        self.Async = bool(use_async)
        settings = load_settings(
            {
                "access_key": given(access_key),
                "bucket_key": given(bucket_key),
                "bucket_name": given(bucket_name),
                "api_base": given(api_base),
                "offline": offline,
                "buffer_size": given(buffer_size),
                "flush_interval": given(flush_interval),
                "spill_dir": given(spill_dir),
                "spill_max_bytes": given(spill_max_bytes),
            },
            ini_file_location,
        )
        self.settings = settings
        max_buffer = DEFAULT_MAX_BUFFER if max_buffer is None else max_buffer
        if max_buffer < 1 or timeout <= 0:
            raise ValueError("max_buffer must be at least 1 and timeout more than 0")
        keyless = sink is None and not settings.offline and not settings.access_key
        if keyless and needs_access_key(settings.api_base):
            raise ConfigError(
                "no access key: pass access_key=..., set ISSTREAMER_ACCESS_KEY, or put "
                "access_key = ... in the [isstreamer.client_config] section of isstreamer.ini "
                "(looked in the current directory, your home directory and "
                "~/.config/isstreamer/); or use offline=True"
            )
        key = settings.bucket_key
        if not key:
            key = str(uuid.uuid4())
            log.warning(
                "no bucket_key given: streaming to a new bucket %s; every run without a "
                "bucket_key creates another one",
                key,
            )
        check_bucket_key(key)
        self._bucket = Bucket(key, settings.bucket_name or key)
        self._batch_size = int(settings.buffer_size)
        self._max_buffer = max(int(max_buffer), self._batch_size)
        self._strict_given = bool(strict)
        self._strict = self._strict_given or debug_level >= 2
        self._timeout = float(timeout)
        self._policy = retry_policy or RetryPolicy()
        self._fix_clock_steps = bool(fix_clock_steps)
        self._user_sink = as_sink(sink) if sink is not None else None
        self._make_sink: Callable[[], Sink]
        if self._user_sink is not None:
            user_sink = self._user_sink
            self._make_sink = lambda: user_sink  # the caller's sink is reused, also after fork
        else:
            self._make_sink = sink_factory(settings, self._timeout)
        self._stats = Stats()
        self._retired_sinks: list[Sink] = []  # replaced by an attribute change; closed by close()
        self._warned: set = set()
        self._closed = False
        self._close_lock = threading.Lock()
        self._close_result: bool | None = None
        self._losses_seen = 0  # losses already reported by flush() or close()
        self._build_pipeline()
        lifecycle.register(self)
        log.debug(
            "streaming to %s, bucket %r, access key %s, buffer_size %d, spool %s",
            self._sink.address,
            self._bucket.key,
            redact_key(settings.access_key),
            self._batch_size,
            self._spool.directory if self._spool else None,
        )
        if self._spool is not None and self.Async and self._spool.files():
            self._worker.start()  # replay what an earlier run left, even before the first log()

    def _build_pipeline(self, buffer: Buffer | None = None) -> None:
        self._buffer = buffer if buffer is not None else Buffer()
        self._items = self._buffer.items
        self._append = self._buffer.append
        self._sink = LoggedSink(self._make_sink())
        self._retired_sinks = []
        spill_dir = self.settings.spill_dir
        self._spool = (
            None
            if self.settings.offline or not spill_dir
            else Spool(
                Path(os.path.expanduser(str(spill_dir))),
                int(self.settings.spill_max_bytes),
                on_evict=lambda files, events: self._delivery.evicted(files, events),
            )
        )
        self._stop = threading.Event()
        self._delivery = Delivery(
            self._sink,
            self._spool,
            self._stats,
            self._policy,
            stop_event=self._stop,
            replay_batch=max(self._batch_size, 500),
        )
        if self._fix_clock_steps:
            self._delivery.clock = ClockWatch(self._stats)
        self._worker = Worker(
            self._buffer,
            self._delivery,
            self._bucket,
            batch_size=self._batch_size,
            flush_interval=float(self.settings.flush_interval),
            max_buffer=self._max_buffer,
            threaded=self.Async,
            steps=self._delivery.clock,
        )
        self._notify = self._worker.notify
        self._relieve_at = 2 * self._max_buffer  # the caller spills only when the worker is stuck

    def __repr__(self) -> str:
        return (
            f"<Streamer bucket={self._bucket.key!r} sink={self._sink.address!r} "
            f"closed={self._closed}>"
        )

    # ---- logging events -----------------------------------------------------------------

    if TYPE_CHECKING:  # the precise signature for type checkers; the body below is the same

        def log(self, key: Key, value: LogValue, epoch: Epoch = None) -> None:
            """Queue one event; never blocks on the network and never raises for it."""

    else:
        # Untyped on purpose: a checker cannot follow the fast path's ``t is float`` tests, and
        # narrowing with isinstance() or casts would cost log() time on every call.
        def log(self, key, value, epoch=None):
            """Queue one event; never blocks on the network and never raises for it."""
            if self._closed:
                self._reopen()
            t = type(value)
            # The fast path takes only what the full validation would take unchanged: ASCII
            # strings (no lone surrogates to replace), finite floats, ints within int64.
            if (
                epoch is None
                and type(key) is str
                and 0 < len(key) <= _MAX_KEY
                and key.isascii()
                and (
                    t is float
                    and value - value == 0.0
                    or t is int
                    and _INT_MIN <= value <= _INT_MAX
                    or t is bool
                    or t is str
                    and len(value) <= _MAX_STRING
                    and value.isascii()
                )
            ):
                event: Event | None = (key, value, _time())
            else:
                event = self._checked(key, value, epoch)
                if event is None:
                    return None
            if len(self._items) >= self._relieve_at:
                self._worker.relieve()
            self._append(event)
            if self._closed:  # close() ran between the check above and the append
                self._worker.drain_to_spool()
                return None
            self._notify()
            return None

    def log_object(self, obj: object, key_prefix: str | None = None, epoch: Epoch = None) -> None:
        """Log every value of a dict, list, namedtuple, dataclass or object, with one epoch."""
        if epoch is None:
            # The time of the call, still a default epoch: a wall-clock step may re-stamp it.
            epoch = _events.DefaultEpoch(_time())
        else:
            try:
                epoch = _events.normalise_epoch(epoch)
            except ValueError as exc:
                self._invalid(key_prefix or _events.default_prefix(obj), exc)
                return None
        prefix = _events.default_prefix(obj) if key_prefix is None else key_prefix
        for key, value in _events.flatten(obj, prefix):
            self.log(key, value, epoch)
        return None

    def _checked(self, key: Any, value: Any, epoch: Any) -> Event | None:
        try:
            return _events.make_event(key, value, epoch)
        except ValueError as exc:  # InvalidEvent and InvalidEventType both
            self._invalid(key, exc)
            return None

    def _invalid(self, key: Any, exc: Exception) -> None:
        self._stats.add("invalid")
        if self._strict:
            raise exc
        name = _events.key_label(key)  # never raises: str() of some keys does
        if name not in self._warned and len(self._warned) < WARN_KEYS_MAX:
            self._warned.add(name)
            log.warning(
                "event %r not logged: %s (counted in stats()['invalid']; further "
                "problems with this key are not reported)",
                name,
                exc,
            )
        return None

    def _reopen(self) -> None:
        """log() after close(): ISStreamer delivered such events, so start again."""
        with self._close_lock:
            if not self._closed:
                return
            if "<closed>" not in self._warned:
                self._warned.add("<closed>")
                log.warning(
                    "log() after close(): reopening the Streamer with a new worker; it is "
                    "closed again at exit (call close() again when done)"
                )
            self._build_pipeline(self._buffer)  # same buffer and counters: stats() still add up
            self._close_result = None
            self._closed = False
            lifecycle.register(self)

    def set_bucket(
        self, bucket_name: str = "", bucket_key: str = "", retries: int | None = None
    ) -> None:
        """Send the following events to another bucket (a new uuid4 key when none is given).

        ``retries`` is ISStreamer's and ignored: the bucket is created with the retries of
        ``retry_policy`` before its first events. A key the service would refuse raises
        ConfigError.
        """
        key = bucket_key or str(uuid.uuid4())
        check_bucket_key(key)
        self._bucket = Bucket(key, bucket_name or key)
        self._buffer.markers += 1  # first, so no consumer takes the marker for an event
        self._append(self._bucket)  # a marker: earlier events still go to the old bucket

    def __enter__(self) -> Streamer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- introspection ------------------------------------------------------------------

    def stats(self) -> StatsDict:
        """Counters since construction, plus the current queue and spool sizes.

        For this Streamer's own events ``logged == sent + replayed + on_disk + quarantined
        + dropped + queued`` whenever no batch is being settled; files of other runs that it
        replayed count in ``replayed_other``, ``quarantined_other`` and ``dropped_other``.
        """
        out: StatsDict = self._stats.snapshot()  # type: ignore[assignment]  # filled below
        out["logged"] = self._buffer.total() - self._buffer.markers
        out["queued"] = self._buffer.queued()
        try:
            files, size = self._spool.usage() if self._spool is not None else (0, 0)
        except OSError:
            files = size = 0
        out["spool_files"], out["spool_bytes"] = files, size
        out["spool_error"] = getattr(self._spool, "error", "")
        out["circuit_open"] = self._delivery.open
        out["last_error"] = self._stats.last_error
        return out

    def _after_fork_in_child(self) -> None:
        # The parent keeps (and sends) its own buffer; the child starts clean, with its own
        # connection, worker and counters. Locks held by parent threads at fork time are replaced.
        if self._closed:
            lifecycle.unregister(self)
            return
        self._stats = Stats()
        self._close_lock = threading.Lock()
        self._losses_seen = 0
        self._build_pipeline()
