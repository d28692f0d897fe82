"""One deadline for a whole HTTP request: connect, upload and the complete response.

urllib3's timeouts apply to each socket operation, so a server that answers one byte a
second keeps a request alive for as long as it likes. A watchdog thread cuts the
connection (``shutdown`` of its socket, which wakes a blocked send or receive at once) when
a request is still running at its deadline; the request then fails like a dropped
connection and the sink reports it as a timeout.

The healthy path pays two lock round trips and no thread wake-up: the watchdog sleeps
towards the oldest armed deadline and, when it wakes to find that request finished, sleeps
on towards the current one, so back-to-back requests wake it about once per timeout.
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


class Watchdog:
    """Cuts the connection of the one request in flight when its deadline passes.

    One request at a time (the sink's worker thread): ``arm(seconds)`` before sending,
    ``attach(conn)`` from the connection as it connects or sends, ``disarm()`` once the
    response is read, which tells whether the deadline cut the request.
    """

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._deadline: float | None = None  # of the armed request (monotonic s); None: none
        self._conn: Any = None  # the connection the armed request runs on
        self._fired = False  # the armed request passed its deadline
        self._wake_at: float | None = None  # when the thread's wait ends; None: no timeout
        self._thread: threading.Thread | None = None  # None: stopped
        _ALL.add(self)

    def arm(self, seconds: float) -> None:
        """Start the deadline of a new request, ``seconds`` from now."""
        deadline = self._clock() + seconds
        with self._cond:
            self._deadline, self._conn, self._fired = deadline, None, False
            if self._thread is None or not self._thread.is_alive():  # first use, or a fork
                self._start()
            elif self._wake_at is None or deadline < self._wake_at:
                self._cond.notify()  # idle, or asleep past this deadline: recompute

    def attach(self, conn: Any) -> None:
        """The armed request now runs on ``conn``; cut it at once if the deadline passed."""
        with self._cond:
            if self._deadline is None and not self._fired:
                return  # not armed: a request made without a deadline
            self._conn = conn
            if self._fired:  # passed while connecting, when there was no socket to cut yet
                _cut(conn)

    def disarm(self) -> bool:
        """End the armed request; True if its deadline passed and its connection was cut."""
        with self._cond:
            fired = self._fired
            self._deadline, self._conn, self._fired = None, None, False
            return fired

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
                deadline = self._deadline
                if deadline is None or self._fired:
                    self._wake_at = None
                    cond.wait()
                    continue
                left = deadline - self._clock()
                if left > 0:
                    self._wake_at = deadline
                    cond.wait(left)
                    continue
                self._fired = True
                if self._conn is not None:
                    _cut(self._conn)
                cond.notify_all()  # for whoever waits to see it fire (tests)

    def _after_fork(self) -> None:
        # The thread did not survive the fork and may have held the lock: start afresh.
        self._cond = threading.Condition(threading.Lock())
        self._thread = None
        self._deadline, self._conn, self._fired, self._wake_at = None, None, False, None


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
