"""The circuit alone, on an injected clock: opening, probe schedule, Retry-After, pacing."""

from __future__ import annotations

from isstreamer.circuit import PACE_SLEEP_MAX, Circuit
from isstreamer.retry import RetryPolicy
from isstreamer.sinks.base import Outcome, SendResult


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


POLICY = RetryPolicy(probe_initial=2.0, probe_max=60.0, max_retry_after=600.0)
FAIL = SendResult(Outcome.RETRY, status=503, message="down")


def make() -> tuple[Circuit, Clock]:
    clock = Clock()
    return Circuit(POLICY, clock, rng=lambda: 1.0), clock


def test_a_failure_opens_and_blocks_until_the_probe_is_due() -> None:
    """After a failure batches are blocked until probe_at, then one probe may go."""
    circuit, clock = make()
    assert not circuit.blocks()
    assert circuit.failed(FAIL) is True
    assert circuit.open and circuit.blocks() and circuit.probe_in_s() == 2.0
    clock.now += 2.0
    assert not circuit.blocks() and circuit.probing()


def test_probe_interval_grows_and_is_capped() -> None:
    """Each failed probe doubles the wait up to probe_max; only the first failure is news."""
    circuit, clock = make()
    waits = []
    for _ in range(8):
        first = circuit.failed(FAIL)
        waits.append(circuit.probe_at - clock.now)
        clock.now = circuit.probe_at
    assert first is False
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


def test_retry_after_sets_the_probe_time_capped() -> None:
    """A Retry-After decides the next probe, capped at max_retry_after."""
    circuit, clock = make()
    circuit.failed(SendResult(Outcome.RETRY, status=429, retry_after=30.0))
    assert circuit.probe_at == clock.now + 30.0
    circuit.failed(SendResult(Outcome.RETRY, status=429, retry_after=1e9))
    assert circuit.probe_at == clock.now + 600.0


def test_success_closes_and_resets_the_schedule() -> None:
    """A success closes the circuit; the next outage starts at probe_initial again."""
    circuit, clock = make()
    circuit.failed(FAIL)
    circuit.failed(FAIL)
    assert circuit.succeeded(SendResult(Outcome.OK)) is True
    assert not circuit.open and circuit.last_ok
    circuit.failed(FAIL)
    assert circuit.probe_at - clock.now == 2.0


def test_rate_limit_on_success_paces_or_opens() -> None:
    """A short pause asked on a success delays the next request; a long one opens the circuit."""
    circuit, clock = make()
    circuit.succeeded(SendResult(Outcome.OK, retry_after=PACE_SLEEP_MAX))
    assert circuit.pace_wait_s() == PACE_SLEEP_MAX and not circuit.open
    clock.now += PACE_SLEEP_MAX
    assert circuit.pace_wait_s() == 0.0
    circuit.succeeded(SendResult(Outcome.OK, retry_after=120.0))
    assert circuit.open and circuit.probe_in_s() == 120.0


def test_refused_key_is_remembered_until_another_failure() -> None:
    """An AUTH failure marks the circuit as open for the key; a later 503 does not."""
    circuit, _ = make()
    circuit.failed(SendResult(Outcome.AUTH, status=401))
    assert circuit.refused_key
    circuit.failed(FAIL)
    assert not circuit.refused_key


def test_probe_now_makes_the_probe_due() -> None:
    """A replay asked for by hand probes at once."""
    circuit, _ = make()
    circuit.failed(FAIL)
    circuit.probe_now()
    assert not circuit.blocks()
