"""Retry policy: pure backoff functions and send_with_retry with an injected sleep."""

from __future__ import annotations

from typing import Callable

import pytest

from isstreamer.retry import (
    RetryPolicy,
    backoff,
    honour_retry_after,
    next_probe_interval,
    send_with_retry,
)
from isstreamer.sinks.base import SENT, Outcome, SendResult

RETRY = SendResult(Outcome.RETRY, 503, "503 Service Unavailable")
NO_JITTER = RetryPolicy(attempts=4, initial_wait=0.5, max_wait=30.0, jitter=0.0)


def rng_of(value: float) -> Callable[[], float]:
    return lambda: value


class Script:
    """A send() that answers a scripted list of results and counts its calls."""

    def __init__(self, *results: SendResult) -> None:
        self.results = list(results)
        self.calls = 0

    def __call__(self) -> SendResult:
        self.calls += 1
        return self.results.pop(0) if len(self.results) > 1 else self.results[0]


class Sleeps:
    """An injected sleep that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def never() -> bool:
    return False


# ---- pure functions ---------------------------------------------------------------------


def test_backoff_doubles_from_initial_wait() -> None:
    """Without jitter the waits are initial_wait, 2x, 4x ... ."""
    assert [backoff(NO_JITTER, n, rng_of(0.0)) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_backoff_is_capped() -> None:
    """The wait never exceeds max_wait plus the jitter."""
    policy = RetryPolicy(initial_wait=1.0, max_wait=10.0, jitter=0.5)
    assert backoff(policy, 4, rng_of(0.0)) == 8.0
    assert backoff(policy, 5, rng_of(0.0)) == 10.0
    assert backoff(policy, 60, rng_of(1.0)) == 10.5


def test_backoff_jitter_bounds() -> None:
    """Jitter adds between 0 and `jitter` seconds, drawn from the injected rng."""
    policy = RetryPolicy(initial_wait=1.0, max_wait=30.0, jitter=0.5)
    assert backoff(policy, 2, rng_of(0.0)) == 2.0
    assert backoff(policy, 2, rng_of(0.5)) == 2.25
    assert backoff(policy, 2, rng_of(1.0)) == 2.5


def test_honour_retry_after_longer_wins() -> None:
    """A Retry-After longer than our backoff replaces it; a shorter one does not shorten it."""
    policy = RetryPolicy(max_retry_after=600.0)
    assert honour_retry_after(1.0, SendResult(Outcome.RETRY, 429, retry_after=7.0), policy) == 7.0
    assert honour_retry_after(5.0, SendResult(Outcome.RETRY, 429, retry_after=2.0), policy) == 5.0
    assert honour_retry_after(1.0, SendResult(Outcome.RETRY, 503), policy) == 1.0
    assert honour_retry_after(1.0, None, policy) == 1.0


def test_honour_retry_after_is_capped() -> None:
    """A server asking for an hour is capped at max_retry_after."""
    policy = RetryPolicy(max_retry_after=120.0)
    assert (
        honour_retry_after(1.0, SendResult(Outcome.RETRY, 429, retry_after=3600.0), policy) == 120.0
    )


def test_probe_interval_starts_at_probe_initial() -> None:
    """The first probe waits between probe_initial/2 and probe_initial."""
    policy = RetryPolicy(probe_initial=2.0, probe_max=60.0)
    assert (
        policy.probe_initial / 2
        <= next_probe_interval(policy, 0.0, rng_of(0.0))
        <= policy.probe_initial
    )
    assert next_probe_interval(policy, 0.0, rng_of(1.0)) == policy.probe_initial


@pytest.mark.parametrize("r", [0.0, 0.3, 0.7, 1.0])
def test_probe_interval_grows_to_probe_max_whatever_the_jitter(r: float) -> None:
    """Fed its own result back, the interval grows and ends between probe_max/2 and probe_max."""
    policy = RetryPolicy(probe_initial=2.0, probe_max=60.0)
    intervals = []
    interval = 0.0
    for _ in range(30):
        interval = next_probe_interval(policy, interval, rng_of(r))
        intervals.append(interval)
    assert all(b >= a for a, b in zip(intervals, intervals[1:]))
    assert policy.probe_max / 2 <= intervals[-1] <= policy.probe_max
    assert max(intervals) <= policy.probe_max


def test_probe_interval_jitter_bounds() -> None:
    """Each interval lies in [grown/2, grown] of the doubled previous one, never above probe_max."""
    policy = RetryPolicy(probe_initial=2.0, probe_max=60.0)
    for previous in (1.0, 4.0, 20.0, 45.0, 60.0):
        grown = min(policy.probe_max, previous * 2)
        low = next_probe_interval(policy, previous, rng_of(0.0))
        high = next_probe_interval(policy, previous, rng_of(1.0))
        assert grown / 2 <= low <= high == grown <= policy.probe_max


def test_probe_interval_real_rng_in_bounds() -> None:
    """With the default random source the interval stays within (0, probe_max]."""
    policy = RetryPolicy(probe_initial=2.0, probe_max=60.0)
    interval = 0.0
    for _ in range(200):
        interval = next_probe_interval(policy, interval)
        assert 0 < interval <= policy.probe_max


# ---- send_with_retry --------------------------------------------------------------------


def test_ok_first_time_makes_one_call() -> None:
    """A healthy send is one call and no sleep."""
    send, sleep = Script(SENT), Sleeps()
    assert send_with_retry(send, NO_JITTER, sleep, never) is SENT
    assert send.calls == 1 and sleep.waits == []


def test_retry_twice_then_ok() -> None:
    """RETRY, RETRY, OK makes three calls with the computed backoff waits between them."""
    send, sleep = Script(RETRY, RETRY, SENT), Sleeps()
    retried: list = []
    result = send_with_retry(
        send, NO_JITTER, sleep, never, on_retry=lambda r, w: retried.append((r, w))
    )
    assert result is SENT
    assert send.calls == 3
    assert sleep.waits == [0.5, 1.0]
    assert retried == [(RETRY, 0.5), (RETRY, 1.0)]


def test_retry_after_sets_the_wait() -> None:
    """A Retry-After of 2 s makes the wait before the next call at least 2 s."""
    throttled = SendResult(Outcome.RETRY, 429, "429 Too Many Requests", retry_after=2.0)
    send, sleep = Script(throttled, SENT), Sleeps()
    assert send_with_retry(send, NO_JITTER, sleep, never) is SENT
    assert send.calls == 2 and len(sleep.waits) == 1 and sleep.waits[0] >= 2.0


def test_retry_after_is_capped_in_send() -> None:
    """A huge Retry-After is capped at max_retry_after."""
    policy = RetryPolicy(attempts=2, jitter=0.0, max_retry_after=30.0, max_inline_wait=float("inf"))
    send, sleep = Script(SendResult(Outcome.RETRY, 429, retry_after=86400.0), SENT), Sleeps()
    send_with_retry(send, policy, sleep, never)
    assert sleep.waits == [30.0]


def test_attempts_exhausted_returns_last_retry() -> None:
    """After `attempts` calls that all say RETRY, the last result is returned (not raised)."""
    last = SendResult(Outcome.RETRY, 500, "the last one")
    send, sleep = Script(RETRY, RETRY, RETRY, last), Sleeps()
    result = send_with_retry(send, NO_JITTER, sleep, never)
    assert result is last
    assert send.calls == NO_JITTER.attempts == 4
    assert sleep.waits == [0.5, 1.0, 2.0]


def test_single_attempt_policy_does_not_retry() -> None:
    """attempts=1 means one call and no wait."""
    send, sleep = Script(RETRY, SENT), Sleeps()
    assert send_with_retry(send, RetryPolicy(attempts=1), sleep, never) is RETRY
    assert send.calls == 1 and sleep.waits == []


def test_should_stop_during_wait_stops_without_another_send() -> None:
    """When closing starts during a backoff wait, no further request is made."""
    stopping = {"now": False}
    send = Script(RETRY, SENT)

    def sleep(seconds: float) -> None:
        stopping["now"] = True  # close() called while we wait

    result = send_with_retry(send, NO_JITTER, sleep, lambda: stopping["now"])
    assert result is RETRY
    assert send.calls == 1


def test_should_stop_before_retrying() -> None:
    """Already closing after the first failure: no wait and no second call."""
    send, sleep = Script(RETRY, SENT), Sleeps()
    assert send_with_retry(send, NO_JITTER, sleep, lambda: True) is RETRY
    assert send.calls == 1 and sleep.waits == []


@pytest.mark.parametrize(
    "result",
    [
        SendResult(Outcome.AUTH, 401, "refused"),
        SendResult(Outcome.AUTH, 402, "cap"),
        SendResult(Outcome.BAD, 400, "bad"),
        SendResult(Outcome.TOO_LARGE, 413, "large"),
    ],
)
def test_non_retryable_outcomes_are_not_retried(result: SendResult) -> None:
    """AUTH, BAD and TOO_LARGE are returned after one call, without waiting."""
    send, sleep = Script(result, SENT), Sleeps()
    assert send_with_retry(send, NO_JITTER, sleep, never) is result
    assert send.calls == 1 and sleep.waits == []


def test_retry_then_auth_stops_retrying() -> None:
    """A retry that answers AUTH ends the retrying with that result."""
    auth = SendResult(Outcome.AUTH, 401, "refused")
    send, sleep = Script(RETRY, auth, SENT), Sleeps()
    assert send_with_retry(send, NO_JITTER, sleep, never) is auth
    assert send.calls == 2 and sleep.waits == [0.5]


def test_jittered_waits_within_bounds() -> None:
    """With jitter the real waits stay within [base, base + jitter]."""
    policy = RetryPolicy(attempts=4, initial_wait=0.5, max_wait=30.0, jitter=0.25)
    send, sleep = Script(RETRY), Sleeps()
    send_with_retry(send, policy, sleep, never)
    for wait, base in zip(sleep.waits, [0.5, 1.0, 2.0]):
        assert base <= wait <= base + 0.25


def test_default_policy_values() -> None:
    """The default policy retries a few times within about a minute, probes at most every minute."""
    policy = RetryPolicy()
    assert policy.attempts >= 2
    assert policy.max_wait <= 60 and policy.probe_max == 60.0
    assert policy.max_retry_after > 0


def test_long_retry_after_ends_the_retries() -> None:
    """A Retry-After beyond max_inline_wait is left to the circuit: one send, no sleep."""
    sleeps: list = []
    calls: list = []

    def send() -> SendResult:
        calls.append(1)
        return SendResult(Outcome.RETRY, 429, retry_after=120.0)

    result = send_with_retry(
        send, RetryPolicy(attempts=4, max_inline_wait=30.0), sleeps.append, lambda: False
    )
    assert result.retry_after == 120.0 and len(calls) == 1 and sleeps == []
