"""One deadline for a whole HTTP request: connect, upload and the complete response.

urllib3's timeouts apply to each socket operation, so a server that answers one byte a
second keeps a request alive for as long as it likes. A watchdog thread cuts the
connection (``shutdown`` of its socket, which wakes a blocked send or receive at once) when
a request is still running at its deadline; the request then fails like a dropped
connection and the sink reports it as a timeout.

The healthy path pays a few uncontended lock round trips (about 2 µs a request) and no
thread wake-up: the watchdog sleeps towards the earliest armed deadline and, when it wakes
to find that request finished, sleeps on towards the next one, so back-to-back requests
wake it about once per timeout. The DNS lookup inside connect() cannot be interrupted; a
request whose deadline passed during it is cut as soon as its socket exists.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from typing import Any, Callable

log = logging.getLogger("isstreamer")

Clock = Callable[[], float]

_ALL: weakref.WeakSet[Watchdog] = weakref.WeakSet()


class _Request:
    """One armed request: its deadline (monotonic s), its connection, whether it was cut."""

    __slots__ = ("deadline", "conn", "fired")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.conn: Any = None
        self.fired = False


class Watchdog:
    """Cuts the connection of a request in flight when its deadline passes.

    Per thread, one request at a time: ``arm(seconds)`` before sending, ``attach(conn)``
    from the connection as it connects or sends (in the same thread), ``disarm()`` once the
    response is read, which tells whether the deadline cut the request. Threads sharing a
    sink (a synchronous Streamer used from several threads) each get their own deadline.
    """

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._armed: dict[int, _Request] = {}  # thread id -> its request in flight
        self._wake_at: float | None = None  # when the thread's wait ends; None: no timeout
        self._thread: threading.Thread | None = None  # None: stopped
        _ALL.add(self)

    def arm(self, seconds: float) -> None:
        """Start the deadline of this thread's next request, ``seconds`` from now."""
        request = _Request(self._clock() + seconds)
        with self._cond:
            self._armed[threading.get_ident()] = request
            if self._thread is None or not self._thread.is_alive():  # first use, or a fork
                self._start()
            elif self._wake_at is None or request.deadline < self._wake_at:
                self._cond.notify()  # idle, or asleep past this deadline: recompute

    def attach(self, conn: Any) -> None:
        """This thread's request now runs on ``conn``; cut it at once if its deadline passed."""
        with self._cond:
            request = self._armed.get(threading.get_ident())
            if request is None:
                return  # not armed: a request made without a deadline
            request.conn = conn
            if request.fired:  # passed while connecting, when there was no socket to cut yet
                _cut(conn)

    def disarm(self) -> bool:
        """End this thread's request; True if its deadline passed and its connection was cut."""
        with self._cond:
            request = self._armed.pop(threading.get_ident(), None)
            return request is not None and request.fired

    def close(self) -> None:
        """Stop the thread; a later arm() starts a new one."""
        with self._cond:
            self._thread = None
            self._cond.notify_all()

    def _start(self) -> None:
        self._wake_at = None
        thread = threading.Thread(target=self._run, name="isstreamer-deadline", daemon=True)
        self._thread = thread
        thread.start()

    def _run(self) -> None:
        me = threading.current_thread()
        cond = self._cond
        with cond:
            while self._thread is me:
                waiting = [r for r in self._armed.values() if not r.fired]
                if not waiting:
                    self._wake_at = None
                    cond.wait()
                    continue
                now = self._clock()
                due = [r for r in waiting if r.deadline <= now]
                if not due:
                    self._wake_at = min(r.deadline for r in waiting)
                    cond.wait(self._wake_at - now)
                    continue
                for request in due:
                    request.fired = True
                    if request.conn is not None:
                        _cut(request.conn)
                cond.notify_all()  # for whoever waits to see it fire (tests)

    def _after_fork(self) -> None:
        # The thread did not survive the fork and may have held the lock: start afresh.
        self._cond = threading.Condition(threading.Lock())
        self._thread = None
        self._armed, self._wake_at = {}, None


def _cut(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed or never connected: nothing left to cut
        pass
    log.debug("request cut at its deadline")


def _reset_after_fork() -> None:
    for watchdog in list(_ALL):
        watchdog._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def watched(base: Any, watchdog: Watchdog) -> Any:
    """A subclass of urllib3 connection class ``base`` that reports itself to ``watchdog``."""

    def connect(self: Any) -> None:
        base.connect(self)
        watchdog.attach(self)

    def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        watchdog.attach(self)  # a reused connection: connect() is not called again
        return base.request(self, *args, **kwargs)

    return type(
        f"Watched{base.__name__}",
        (base,),
        {"connect": connect, "request": request, "watchdog": watchdog},
    )


def watch_pool(pool: Any, watchdog: Watchdog) -> None:
    """Make the connections ``pool`` opens from now on report to ``watchdog`` (idempotent)."""
    cls = getattr(pool, "ConnectionCls", None)
    if cls is not None and getattr(cls, "watchdog", None) is not watchdog:
        pool.ConnectionCls = watched(cls, watchdog)
