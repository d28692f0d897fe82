"""The circuit in front of a sink: closed while it answers, open while it fails.

Open, nothing is sent but one probe at growing, jittered intervals (or when the receiver's
Retry-After says); new batches go to disk meanwhile, which ends a retry storm. A rate-limit
header on a success pauses sending briefly (pace) or, when the pause is long, opens the
circuit until then. All times are on an injected monotonic clock, in seconds.
"""

from __future__ import annotations

import logging
import random
from typing import Callable

from .model import Outcome, SendResult
from .retry import RetryPolicy, next_probe_interval

log = logging.getLogger("isstreamer")

PACE_SLEEP_MAX = 2.0  # seconds: a longer rate-limit pause opens the circuit instead of blocking


class Circuit:
    """Open/closed state, the probe schedule, Retry-After and rate-limit pauses of one sink."""

    def __init__(
        self,
        policy: RetryPolicy,
        clock: Callable[[], float],
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.rng = rng
        self.open = False
        self.probe_at = 0.0  # monotonic time of the next probe while open
        self.pace_until = 0.0  # monotonic time before which no request is started
        self.last_ok = False  # the last answer was a success: a failure now is news
        self.refused_key = False  # open because the receiver refused the credentials
        self._interval = 0.0

    def blocks(self) -> bool:
        """True while open and the next probe is not yet due: batches go to disk."""
        return self.open and self.clock() < self.probe_at

    def probing(self) -> bool:
        """True when the next send is a probe of an open circuit (one attempt, no retries)."""
        return self.open

    def pace_wait_s(self) -> float:
        """Seconds to wait before the next request because the receiver asked to slow down."""
        return max(0.0, self.pace_until - self.clock())

    def probe_in_s(self) -> float | None:
        """Seconds until the next probe while open (0 when due), None while closed."""
        return max(0.0, self.probe_at - self.clock()) if self.open else None

    def succeeded(self, result: SendResult) -> bool:
        """Record a success; True when it closed an open circuit."""
        closed_now = self.open
        self.open, self._interval, self.last_ok = False, 0.0, True
        wait = result.retry_after
        if wait:  # rate-limit headers on a success ask us to slow down
            if wait <= PACE_SLEEP_MAX:
                self.pace_until = self.clock() + wait
            else:
                self.open, self.probe_at = (
                    True,
                    self.clock() + min(wait, self.policy.max_retry_after),
                )
        return closed_now

    def failed(self, result: SendResult) -> bool:
        """Record a failure that gave up on a batch: open or stay open; True when just opened."""
        first = not self.open
        self.open, self.last_ok = True, False
        self.refused_key = result.outcome is Outcome.AUTH
        if result.retry_after is not None:
            interval = min(result.retry_after, self.policy.max_retry_after)
        else:
            interval = self._interval = next_probe_interval(self.policy, self._interval, self.rng)
        self.probe_at = self.clock() + interval
        return first

    def probe_now(self) -> None:
        """A replay asked for by hand: the next send probes at once."""
        if self.open:
            self.probe_at = self.clock()
