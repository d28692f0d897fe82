"""The bounded buffer between log() and the worker, and the progress flush() waits on.

Producers append to a plain deque (atomic under the GIL, no lock on the hot path). Consumers
(the worker, or a producer moving overflow to disk) take items under a lock and report them
done; flush() waits until everything that was in the buffer when it was called is done.
Items are event tuples, or a Bucket marker placed by set_bucket() so that events logged
before a bucket change still go to the old bucket.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any


class Buffer:
    """FIFO of items with a watermark of how far consumers have got."""

    def __init__(self) -> None:
        self.items: deque[Any] = deque()
        self.append = self.items.append  # the hot path binds this directly
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._taken = 0  # items ever taken out
        self._inflight: dict[int, int] = {}  # token -> index of its first item
        self._inflight_events: dict[int, int] = {}  # token -> events (not markers) it holds
        self._next_token = 0
        self._waiting: list[int] = []  # marks flush() callers wait for: wake them only then
        self.markers = 0  # set_bucket() markers ever put in; 0 lets consumers skip grouping

    def __len__(self) -> int:
        return len(self.items)

    @property
    def taken(self) -> int:
        """Items ever taken out; read without the lock (a stale value only delays a wake-up)."""
        return self._taken

    def take(self, max_items: int) -> tuple[int, list[Any]]:
        """Remove up to ``max_items`` of the oldest items; report them with done(token)."""
        with self._lock:
            popleft = self.items.popleft
            n = min(max_items, len(self.items))
            taken = [popleft() for _ in range(n)]
            token = self._next_token
            self._next_token += 1
            self._inflight[token] = self._taken
            self._inflight_events[token] = (
                n if not self.markers else sum(1 for x in taken if type(x) is tuple)
            )
            self._taken += n
            return token, taken

    def done(self, token: int) -> None:
        with self._lock:
            self._inflight.pop(token, None)
            self._inflight_events.pop(token, None)
            # Waking every flush() caller after every batch costs a thread switch each time.
            if self._waiting and self._watermark() >= min(self._waiting):
                self._progress.notify_all()

    def mark(self) -> int:
        """The position that everything logged so far will have passed once handled."""
        with self._lock:
            return self._taken + len(self.items)

    def _watermark(self) -> int:
        return min(self._inflight.values(), default=self._taken)

    def wait_handled(self, mark: int, deadline: float | None) -> bool:
        """Wait until every item before ``mark`` is done; False at the deadline (monotonic)."""
        with self._lock:
            self._waiting.append(mark)
            try:
                while self._watermark() < mark:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._progress.wait(remaining)
                return True
            finally:
                self._waiting.remove(mark)

    def queued(self) -> int:
        """Events waiting in memory or taken and not yet settled (markers excluded)."""
        with self._lock:
            waiting = (
                len(self.items)
                if not self.markers
                else sum(1 for x in list(self.items) if type(x) is tuple)
            )
            return waiting + sum(self._inflight_events.values())

    def total(self) -> int:
        """Items ever put in (taken + waiting)."""
        with self._lock:
            return self._taken + len(self.items)
