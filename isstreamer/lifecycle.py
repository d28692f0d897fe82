"""Closing Streamers the program forgot: at exit, in forked and multiprocessing children.

A program that ends normally runs atexit; a ``multiprocessing`` child started by fork ends
with ``os._exit``, which skips atexit, but runs multiprocessing's finalizers first. So the
closing is registered both ways, and again in each child (the fork clears the finalizers).
A child made by a bare ``os.fork()`` that ends with ``os._exit`` runs neither: its events
are delivered only if it calls flush() or close() (said in the README).
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import time
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .streamer import Streamer

log = logging.getLogger("isstreamer")

ATEXIT_TIMEOUT_S = 5.0  # for all Streamers the program forgot to close
EXIT_PRIORITY = 10  # multiprocessing finalizers: before its own (queues, pools) at 0 and below

_live: weakref.WeakSet[Streamer] = weakref.WeakSet()


class _Anchor:
    """A weak-referenceable object for multiprocessing.util.register_after_fork."""


_anchor = _Anchor()
_finalizer_pid = 0
_bare_fork_pid = 0  # this process was made by os.fork(), not by multiprocessing
_warned_pid = 0


def register(streamer: Streamer) -> None:
    """Close ``streamer`` at exit unless it is closed first."""
    _live.add(streamer)
    if _finalizer_pid != os.getpid():
        _register_finalizer()


def unregister(streamer: Streamer) -> None:
    _live.discard(streamer)


def close_all(timeout_s: float = ATEXIT_TIMEOUT_S) -> None:
    """Close every open Streamer, sharing one deadline."""
    deadline = time.monotonic() + timeout_s
    for streamer in list(_live):
        remaining = deadline - time.monotonic()
        try:
            streamer.close(max(0.5, remaining))
        except Exception:
            log.exception("closing a Streamer at exit failed")


def _register_finalizer(_: object = None) -> None:
    global _finalizer_pid
    _finalizer_pid = os.getpid()
    multiprocessing.util.Finalize(None, close_all, exitpriority=EXIT_PRIORITY)


def _in_multiprocessing_child(_: object) -> None:
    global _bare_fork_pid
    _bare_fork_pid = 0  # multiprocessing runs its finalizers at the end: nothing to warn of
    _register_finalizer()


def warn_if_bare_fork() -> None:
    """Once per process: say that a child of a bare os.fork() must close its Streamers."""
    global _warned_pid
    pid = os.getpid()
    if _bare_fork_pid == pid and _warned_pid != pid:
        _warned_pid = pid
        log.warning(
            "this process was forked with os.fork(): its events are delivered at exit "
            "only if it ends normally or calls close(); os._exit() skips both"
        )


def _after_fork_in_child() -> None:
    global _bare_fork_pid
    _bare_fork_pid = os.getpid()  # until multiprocessing's bootstrap says otherwise
    for streamer in list(_live):
        streamer._after_fork_in_child()


atexit.register(close_all)
# multiprocessing's child bootstrap clears the finalizers and then runs these hooks.
multiprocessing.util.register_after_fork(_anchor, _in_multiprocessing_child)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
