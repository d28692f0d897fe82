"""The public Streamer: ISStreamer's API, with a bounded buffer and one background worker."""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from . import events as _events
from .buffer import Buffer
from .config import load_settings
from .delivery import Delivery
from .errors import ConfigError
from .redact import redact_key
from .retry import RetryPolicy
from .sinks.base import Bucket, Event, Sink, as_sink
from .sinks.factory import needs_access_key, sink_factory
from .spool import Spool
from .stats import Stats
from .worker import Worker

log = logging.getLogger("isstreamer")
_time = time.time
_live: "weakref.WeakSet[Streamer]" = weakref.WeakSet()
ATEXIT_TIMEOUT = 5.0  # seconds, for all Streamers the program forgot to close
WARN_KEYS_MAX = 1000  # distinct keys remembered for "warn once per key"


class _DefaultInt(int):
    """A default that is told apart from the same value given explicitly (ini may override it)."""


class _DefaultFloat(float):
    pass


_DEFAULT_BUFFER_SIZE = _DefaultInt(10)
_DEFAULT_FLUSH_INTERVAL = _DefaultFloat(1.0)


def _given(value: Any) -> Any:
    return None if isinstance(value, (_DefaultInt, _DefaultFloat)) or value in ("", None) else value


def _apply_debug_level(debug_level: int) -> None:
    # ISStreamer's levels: 0 quiet, 1 informative, 2+ everything.
    if debug_level <= 0 and log.level != logging.NOTSET:
        return  # the application configured the logger itself; leave it be
    log.setLevel(logging.WARNING if debug_level <= 0 else logging.INFO if debug_level == 1 else logging.DEBUG)
    if debug_level > 0 and not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s isstreamer %(levelname)s: %(message)s"))
        log.addHandler(handler)


class Streamer:
    """Streams events to Initial State (or a collector, Redis, a CSV file) without blocking."""

    def __init__(self, bucket_name: str = "", bucket_key: str = "", access_key: str = "",
                 ini_file_location: Optional[str] = None, debug_level: int = 0,
                 buffer_size: int = _DEFAULT_BUFFER_SIZE, offline: Optional[bool] = None,
                 use_async: bool = True, *, api_base: Optional[str] = None,
                 flush_interval: float = _DEFAULT_FLUSH_INTERVAL, max_buffer: int = 10000,
                 spill_dir: Optional[str] = None, spill_max_bytes: Optional[int] = None,
                 timeout: float = 10.0, strict: bool = False, sink: Any = None,
                 retry_policy: Optional[RetryPolicy] = None) -> None:
        _apply_debug_level(debug_level)
        self.DebugLevel = debug_level
        self.Async = bool(use_async)
        settings = load_settings({
            "access_key": _given(access_key), "bucket_key": _given(bucket_key),
            "bucket_name": _given(bucket_name), "api_base": _given(api_base), "offline": offline,
            "buffer_size": _given(buffer_size), "flush_interval": _given(flush_interval),
            "spill_dir": _given(spill_dir), "spill_max_bytes": _given(spill_max_bytes),
        }, ini_file_location)
        self.settings = settings
        if max_buffer < 1 or timeout <= 0:
            raise ValueError("max_buffer must be at least 1 and timeout more than 0")
        if sink is None and not settings.offline and needs_access_key(settings.api_base) and not settings.access_key:
            raise ConfigError(
                "no access key: pass access_key=..., set ISSTREAMER_ACCESS_KEY, or put access_key = ... "
                "in the [isstreamer.client_config] section of isstreamer.ini (looked in the current "
                "directory, your home directory and ~/.config/isstreamer/); or use offline=True")
        key = settings.bucket_key
        if not key:
            key = str(uuid.uuid4())
            log.warning("no bucket_key given: streaming to a new bucket %s; every run without a "
                        "bucket_key creates another one", key)
        self._bucket = Bucket(key, settings.bucket_name or key)
        self._batch_size = int(settings.buffer_size)
        self._max_buffer = max(int(max_buffer), self._batch_size)
        self._strict = bool(strict) or debug_level >= 2
        self._timeout = float(timeout)
        self._policy = retry_policy or RetryPolicy()
        self._user_sink = as_sink(sink) if sink is not None else None
        self._make_sink: Callable[[], Sink]
        if self._user_sink is not None:
            user_sink = self._user_sink
            self._make_sink = lambda: user_sink  # the caller's sink is reused, also after fork
        else:
            self._make_sink = sink_factory(settings, self._timeout)
        self._stats = Stats()
        self._warned: set = set()
        self._closed = False
        self._close_lock = threading.Lock()
        self._close_result: Optional[bool] = None
        self._build_pipeline()
        _live.add(self)
        log.debug("streaming to %s, bucket %r, access key %s, buffer_size %d, spool %s",
                  self._sink.address, self._bucket.key, redact_key(settings.access_key),
                  self._batch_size, self._spool.directory if self._spool else None)
        if self._spool is not None and self.Async and self._spool.files():
            self._worker.start()  # replay what an earlier run left, even before the first log()

    def _build_pipeline(self) -> None:
        self._buffer = Buffer()
        self._items = self._buffer.items
        self._append = self._buffer.append
        self._sink = self._make_sink()
        spill_dir = self.settings.spill_dir
        self._spool = None if self.settings.offline or not spill_dir else Spool(
            Path(os.path.expanduser(str(spill_dir))), int(self.settings.spill_max_bytes),
            on_evict=lambda files, events: self._stats.add("dropped", events))
        self._stop = threading.Event()
        self._delivery = Delivery(self._sink, self._spool, self._stats, self._policy, stop_event=self._stop,
                                  replay_batch=max(self._batch_size, 500))
        self._worker = Worker(self._buffer, self._delivery, self._bucket, batch_size=self._batch_size,
                              flush_interval=float(self.settings.flush_interval))
        self._overflow_lock = threading.Lock()
        self._last_overflow_log = float("-inf")

    # ---- ISStreamer-compatible attributes ---------------------------------------------

    @property
    def BucketKey(self) -> str:
        return self._bucket.key

    @property
    def BucketName(self) -> str:
        return self._bucket.name

    @property
    def BufferSize(self) -> int:
        return self._batch_size

    @property
    def StreamApiBase(self) -> str:
        return str(self.settings.api_base)

    @property
    def Offline(self) -> bool:
        return bool(self.settings.offline)

    @property
    def IsClosed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"<Streamer bucket={self._bucket.key!r} sink={self._sink.address!r} closed={self._closed}>"

    # ---- logging events -----------------------------------------------------------------

    def log(self, key: Any, value: Any, epoch: Any = None) -> None:
        """Queue one event; never blocks on the network and never raises for it."""
        if self._closed:
            return self._refuse()
        t = type(value)
        if (epoch is None and type(key) is str and 0 < len(key) <= 250 and (
                t is float and value - value == 0.0 or t is int or t is bool or t is str and len(value) <= 2000)):
            event: Optional[Event] = (key, value, _time())
        else:
            event = self._checked(key, value, epoch)
            if event is None:
                return None
        if len(self._items) >= self._max_buffer:
            self._overflow()
        self._append(event)
        if self._closed:  # close() ran between the check above and the append
            self._worker.drain_to_spool()
            return None
        worker = self._worker
        if (worker.idle or len(self._items) >= worker.kick_at) and not worker.kicked:
            self._kick()
        return None

    def log_object(self, obj: Any, key_prefix: Optional[str] = None, epoch: Any = None) -> None:
        """Log every value of a dict, list, namedtuple, dataclass or object, with one epoch."""
        if epoch is None:
            epoch = _time()
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

    def _checked(self, key: Any, value: Any, epoch: Any) -> Optional[Event]:
        try:
            return _events.make_event(key, value, epoch)
        except ValueError as exc:  # InvalidEvent and InvalidEventType both
            self._invalid(key, exc)
            return None

    def _invalid(self, key: Any, exc: Exception) -> None:
        self._stats.add("invalid")
        if self._strict:
            raise exc
        name = str(key)[:100]
        if name not in self._warned and len(self._warned) < WARN_KEYS_MAX:
            self._warned.add(name)
            log.warning("event %r not logged: %s (counted in stats()['invalid']; further "
                        "problems with this key are not reported)", name, exc)
        return None

    def _refuse(self) -> None:
        self._stats.add("invalid")
        if "<closed>" not in self._warned:
            self._warned.add("<closed>")
            log.warning("log() after close(): event not logged")

    def _kick(self) -> None:
        worker = self._worker
        if not self.Async:
            while len(self._items) >= self._batch_size:
                worker.ship(self._batch_size)  # use_async=False: send on the caller's thread
            return
        worker.idle = False
        if worker._thread is None:
            worker.start()
        worker.kicked = True
        worker.wake.set()

    def _overflow(self) -> None:
        """Memory is full: move the oldest events to disk rather than drop them."""
        with self._overflow_lock:
            if len(self._items) < self._max_buffer:
                return  # another thread made room meanwhile
            count = max(self._batch_size, self._max_buffer // 4)
            now = time.monotonic()
            if now - self._last_overflow_log > 60:
                self._last_overflow_log = now
                log.warning("buffer full (max_buffer=%d, %s): moving the oldest %d events to the spool",
                            self._max_buffer, "sink down" if self._delivery.open else "sending too slowly", count)
            token, groups = self._worker.take_grouped(count)
            try:
                for bucket, events in groups:
                    self._delivery.spill(bucket, events, last_error="memory buffer full")
            finally:
                self._buffer.done(token)

    def set_bucket(self, bucket_name: str = "", bucket_key: str = "") -> None:
        """Send the following events to another bucket (a new uuid4 key when none is given)."""
        key = bucket_key or str(uuid.uuid4())
        self._bucket = Bucket(key, bucket_name or key)
        self._buffer.markers += 1  # first, so no consumer takes the marker for an event
        self._append(self._bucket)  # a marker: earlier events still go to the old bucket

    # ---- flush, close, replay -----------------------------------------------------------

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until everything logged so far is sent or on disk; False at the deadline."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.Async or self._stop.is_set():
            self._delivery.deadline = deadline  # retries on this thread end at the deadline too
            try:
                while len(self._items):
                    if deadline is not None and time.monotonic() >= deadline:
                        return False
                    self._worker.ship(self._batch_size)
            finally:
                self._delivery.deadline = None
            return True
        mark = self._buffer.mark()
        worker = self._worker
        worker.flush_mark = max(worker.flush_mark, mark)
        worker.idle = False
        worker.start()
        worker.wake.set()
        return self._buffer.wait_handled(mark, deadline)

    def close(self, timeout: float = 10.0) -> bool:
        """Stop taking events, deliver or spill what is left, release everything.

        Returns True when nothing was lost: every event was delivered or is in the spool.
        Never takes longer than ``timeout`` seconds (plus a disk write), even when the
        receiver hangs. Safe to call more than once.
        """
        with self._close_lock:
            if self._close_result is not None or self._closed:
                return bool(self._close_result)
            self._closed = True
        deadline = time.monotonic() + timeout
        dropped_before = self._stats.snapshot()["dropped"]
        if not self.Async:
            self._stop.set()  # on the caller's thread: one attempt per batch, no backoff waits
        try:
            self.flush(timeout)
        except Exception:  # a sink bug on the sync path must not stop the cleanup below
            log.exception("flush during close failed")
        if not self._worker.stop(deadline):
            self._delivery.rescue_inflight()
            log.warning("close(): the receiver did not answer within %.1f s; unsent events are in the spool", timeout)
        self._worker.drain_to_spool()
        sending = self._delivery.release_replay()  # a file still on the wire stays claimed
        if self._spool is not None:
            try:
                self._spool.release_own_claims(keep=sending)
            except OSError:
                pass
        try:
            self._sink.close()
        except Exception:
            log.debug("sink close failed", exc_info=True)
        _live.discard(self)
        self._close_result = self._stats.snapshot()["dropped"] == dropped_before
        return self._close_result

    def replay(self, timeout: Optional[float] = None) -> bool:
        """Replay the spool now; True when nothing is left for this receiver.

        With a running worker the worker does it (so the two never compete for files and a
        file the worker already claimed counts as pending); otherwise it runs on this thread.
        """
        if self._spool is None:
            return True
        if self.Async and not self._closed:
            self._delivery.request_replay()
            self._kick()
            return self._delivery.drained.wait(timeout) and not self._delivery.open
        deadline = None if timeout is None else time.monotonic() + timeout
        sink = self._make_sink() if self._user_sink is None else self._user_sink
        delivery = Delivery(sink, self._spool, self._stats, self._policy, stop_event=threading.Event(),
                            replay_batch=max(self._batch_size, 500))
        try:
            return delivery.replay_all(deadline)
        finally:
            if sink is not self._sink and sink is not self._user_sink:
                sink.close()

    def __enter__(self) -> "Streamer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- introspection ------------------------------------------------------------------

    def stats(self) -> Dict[str, Any]:
        """Counters since construction, plus the current queue and spool sizes."""
        out: Dict[str, Any] = self._stats.snapshot()
        out["logged"] = self._buffer.total() - self._buffer.markers
        out["queued"] = sum(1 for item in list(self._items) if type(item) is tuple)
        files, size = self._spool.usage() if self._spool is not None else (0, 0)
        out["spool_files"], out["spool_bytes"] = files, size
        out["last_error"] = self._stats.last_error
        return out

    def _after_fork_in_child(self) -> None:
        # The parent keeps (and sends) its own buffer; the child starts clean, with its own
        # connection and worker. Locks held by parent threads at fork time are replaced.
        self._stats._lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._build_pipeline()


def _close_all_at_exit() -> None:
    deadline = time.monotonic() + ATEXIT_TIMEOUT
    for streamer in list(_live):
        remaining = deadline - time.monotonic()
        try:
            streamer.close(max(0.5, remaining))
        except Exception:
            log.exception("closing a Streamer at exit failed")


def _after_fork() -> None:
    for streamer in list(_live):
        if not streamer._closed:
            streamer._after_fork_in_child()


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
