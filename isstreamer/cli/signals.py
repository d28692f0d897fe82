"""Signals for the commands: the one way SIGINT, SIGTERM (and SIGUSR1) reach a command's loop.

A signal handler only writes the signal's number to a pipe; a small thread reads it and sets
the Event or runs the callback. A handler calling ``Event.set()`` itself could deadlock if
the signal lands while the main thread holds the Event's internal lock, and a callback that
logs could deadlock on the logging lock the same way.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any, Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignal:
    """Set by SIGINT/SIGTERM or by another thread; waited on like a threading.Event.

    After the first stop signal the previous handlers are back, so a second Ctrl-C or
    SIGTERM ends the program at once. ``on(signum, callback)`` runs ``callback`` on the
    watcher thread for each such signal (SIGUSR1 for a status report, SIGHUP for a reload);
    ``nap(timeout)`` sleeps until the timeout, a stop or any such signal, so a loop can act
    on a callback's flag at once. Off the main thread no handler can be installed: the Event
    then only stops by ``set()``.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self._woken = threading.Event()  # set by every stop and every callback run
        self.signum: int | None = None
        self._read, self._write = os.pipe()
        self._previous: dict[int, Any] = {}  # stop signals whose handler is ours
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._other_previous: dict[int, Any] = {}
        self._watcher = threading.Thread(target=self._watch, name="isstreamer-signals", daemon=True)

    def __enter__(self) -> StopSignal:
        self._watcher.start()
        for signum in STOP_SIGNALS:
            previous = _install(signum, self._handle)
            if previous is not _NOT_INSTALLED:
                self._previous[signum] = previous
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()
        for signum, handler in self._other_previous.items():
            signal.signal(signum, handler)
        self._other_previous.clear()
        os.close(self._write)  # ends the watcher
        self._watcher.join(1.0)
        os.close(self._read)

    def on(self, signum: int, callback: Callable[[], None]) -> bool:
        """Run ``callback`` (on the watcher thread) at each ``signum``; False if not possible."""
        previous = _install(signum, self._forward)
        if previous is _NOT_INSTALLED:
            return False
        self._other_previous.setdefault(signum, previous)
        self._callbacks[signum] = callback
        return True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        self._restore()
        self._forward(signum, frame)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        try:
            os.write(self._write, bytes([signum]))
        except OSError:
            pass

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _watch(self) -> None:
        while True:
            try:
                data = os.read(self._read, 1)
            except OSError:
                return
            if not data:
                return  # the write end was closed: the command is done
            callback = self._callbacks.get(data[0])
            if callback is not None:
                callback()
            else:
                self.event.set()
            self._woken.set()

    def set(self) -> None:
        self.event.set()
        self._woken.set()

    def nap(self, timeout: float) -> None:
        """Sleep up to ``timeout`` seconds; a stop or a signal given to on() ends it early.

        The caller checks its flags after each nap: one set during the nap is seen then, one
        set after it ends the next nap at once.
        """
        self._woken.wait(timeout)
        self._woken.clear()

    def is_set(self) -> bool:
        return self.event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.event.wait(timeout)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


_NOT_INSTALLED = object()


def _install(signum: int, handler: Callable[[int, FrameType | None], None]) -> Any:
    """signal.signal(), or _NOT_INSTALLED off the main thread (the caller handles signals)."""
    try:
        return signal.signal(signum, handler)
    except ValueError:
        return _NOT_INSTALLED
