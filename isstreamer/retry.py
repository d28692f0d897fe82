"""Retry policy: how often and how long to wait before giving a batch to the spool.

Backoff is computed by pure functions; the sleeping is done by whoever runs the retry (the
worker sleeps on its stop event, so close() interrupts a wait at once).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import tenacity

from .model import Outcome, SendResult

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and waits for one batch, and the probe cadence once the sink is down.

    All durations are in seconds.
    """

    attempts: int = 4  # tries of one batch before it goes to the spool
    initial_wait: float = 0.5
    max_wait: float = 30.0
    jitter: float = 0.5  # up to this many seconds added at random to each wait
    max_retry_after: float = 600.0  # a server asking for longer is capped here
    max_inline_wait: float = (
        30.0  # a longer Retry-After ends the retries: the circuit waits instead
    )
    probe_initial: float = 2.0  # first wait before probing a failed sink
    probe_max: float = 60.0  # the cap of the growing probe interval
    sleep: Sleep | None = None  # injected in tests; the worker's interruptible wait otherwise


def backoff(policy: RetryPolicy, attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Jittered exponential wait before retry number ``attempt`` (1-based)."""
    base = min(policy.max_wait, policy.initial_wait * 2 ** (attempt - 1))
    return base + policy.jitter * rng()


def honour_retry_after(wait: float, result: SendResult | None, policy: RetryPolicy) -> float:
    """A server's Retry-After (capped) wins over our own backoff when it is longer."""
    if result is not None and result.retry_after is not None:
        return max(wait, min(result.retry_after, policy.max_retry_after))
    return wait


def next_probe_interval(
    policy: RetryPolicy, previous: float, rng: Callable[[], float] = random.random
) -> float:
    """Growing, jittered interval between probes of a failed sink, capped at probe_max."""
    grown = policy.probe_initial if previous <= 0 else min(policy.probe_max, previous * 2)
    # Jitter on the upper quarter keeps a fleet of devices from probing in lock-step; callers
    # feed the jittered value back, so a wider spread could stop the interval from growing.
    return grown * 0.75 + grown * 0.25 * rng()


class _Wait(tenacity.wait.wait_base):
    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        result = outcome.result() if outcome is not None and not outcome.failed else None
        return honour_retry_after(
            backoff(self.policy, retry_state.attempt_number), result, self.policy
        )


def send_with_retry(
    send: Callable[[], SendResult],
    policy: RetryPolicy,
    sleep: Sleep,
    should_stop: Callable[[], bool],
    on_retry: Callable[[SendResult, float], None] | None = None,
) -> SendResult:
    """Call ``send`` until it stops answering RETRY, attempts run out or ``should_stop()``.

    The first attempt is made directly: tenacity's bookkeeping is only paid when a batch
    actually has to be retried, which keeps the healthy path cheap.
    """
    first = send()
    if (
        first.outcome is not Outcome.RETRY
        or policy.attempts <= 1
        or should_stop()
        or _long_wait(first, policy)
    ):
        return first
    results = [first]  # the first entry is replayed so tenacity computes the first wait from it
    replayed = False

    def attempt() -> SendResult:
        nonlocal replayed
        if not replayed:
            replayed = True
            return first
        if should_stop():
            return results[-1]  # closing: don't start a request that could hang past the deadline
        results.append(send())
        return results[-1]

    def stop_now() -> bool:
        # A long Retry-After is not waited out inside one batch: the batch is spilled and the
        # circuit probes again at that time, while new events keep going to disk.
        return should_stop() or _long_wait(results[-1], policy)

    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        if on_retry is not None and retry_state.next_action is not None:
            on_retry(results[-1], retry_state.next_action.sleep)

    retrying = tenacity.Retrying(
        # attempt 1 is the replayed first result, so policy.attempts real sends in all
        stop=tenacity.stop_any(tenacity.stop_after_attempt(policy.attempts), _StopWhen(stop_now)),
        wait=_Wait(policy),
        retry=tenacity.retry_if_result(lambda r: r.outcome is Outcome.RETRY),
        sleep=sleep,
        before_sleep=before_sleep,
        retry_error_callback=lambda _state: results[-1],
        reraise=False,
    )
    retrying(attempt)
    return results[-1]


def _long_wait(result: SendResult, policy: RetryPolicy) -> bool:
    return result.retry_after is not None and result.retry_after > policy.max_inline_wait


class _StopWhen(tenacity.stop.stop_base):
    """Stop retrying as soon as a predicate says so (the Streamer is closing)."""

    def __init__(self, predicate: Callable[[], bool]) -> None:
        self.predicate = predicate

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self.predicate()
