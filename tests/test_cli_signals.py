"""StopSignal (isstreamer/cli/signals.py): stop signals, callbacks on the watcher thread, naps."""

from __future__ import annotations

import os
import signal
import threading

from isstreamer.cli.signals import StopSignal


def test_stop_signal_runs_callbacks_and_stops_once() -> None:
    """SIGUSR1 runs its callback on the watcher thread; SIGTERM sets the stop and is named."""
    called = threading.Event()
    with StopSignal() as stop:
        assert stop.on(signal.SIGUSR1, called.set)
        os.kill(os.getpid(), signal.SIGUSR1)
        assert called.wait(10) and not stop.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(10) and stop.name == "SIGTERM"
        assert signal.getsignal(signal.SIGTERM) is not stop._handle  # a second one is fatal
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_a_callback_signal_ends_a_nap_at_once() -> None:
    """nap() returns at a SIGHUP's callback, long before its timeout, without stopping."""
    flag = threading.Event()
    with StopSignal() as stop:
        assert stop.on(signal.SIGHUP, flag.set)
        timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGHUP))
        timer.start()
        while not flag.is_set():  # each nap ends at the signal; 60 s would fail the test
            stop.nap(60)
        timer.join()
        assert not stop.is_set()
        stop.set()
        stop.nap(60)  # a stop ends a nap too
        assert stop.is_set()


def test_stop_signal_off_the_main_thread_only_stops_by_set() -> None:
    """Off the main thread no handler can be installed: StopSignal still works by set()."""
    seen: list = []

    def body() -> None:
        with StopSignal() as stop:
            seen.append(stop.on(signal.SIGUSR1, lambda: None))
            stop.set()
            seen.append(stop.wait(1))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(30)
    assert seen == [False, True]
