"""What became of a batch: the Report of a delivery call, and the helpers that build it.

Pending follows a batch through partial successes; Tally counts settled events into the
Stats and into a Report at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

from .model import SENT, Event, SendResult

Account = Callable[[str, int], None]  # (outcome counter, events): where settled events are counted
# Server errors that speak of the receiver's state rather than of the batch: never poison.
NOT_POISON_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class Report:
    """What became of the events of one delivery call."""

    sent: int = 0  # accepted by the receiver
    spilled: int = 0  # on disk, to be replayed
    quarantined: int = 0  # refused by the receiver, set aside with its answer
    dropped: int = 0  # lost: counted and logged

    def __add__(self, other: Report) -> Report:
        if not (other.sent or other.spilled or other.quarantined or other.dropped):
            return self
        return Report(
            self.sent + other.sent,
            self.spilled + other.spilled,
            self.quarantined + other.quarantined,
            self.dropped + other.dropped,
        )

    @property
    def delivered(self) -> bool:
        """True when every event was accepted by the receiver."""
        return not (self.spilled or self.quarantined or self.dropped)


class Tally:
    """Counts settled events into Stats (via ``account``) and into a Report at once."""

    def __init__(self, account: Account) -> None:
        self._account = account
        self.counts = {"sent": 0, "spilled": 0, "quarantined": 0, "dropped": 0}

    def __call__(self, outcome: str, events: int) -> None:
        if events:
            self._account(outcome, events)
            self.counts[outcome] += events

    def report(self) -> Report:
        return Report(**self.counts)


class Pending:
    """The events of one batch not yet stored; a partial success shrinks it.

    A sink may answer that some events were stored and others not (``SendResult.failed``);
    only those are sent again, so a partial failure never repeats what succeeded.
    """

    def __init__(self, events: Sequence[Event]) -> None:
        self.events: list[Event] = list(events)
        self.stored = 0  # events of this batch the receiver has stored so far

    def absorb(self, result: SendResult) -> SendResult:
        """Account for one answer; returns it as the answer for what is still pending."""
        if result.ok:
            self.stored += len(self.events)
            self.events = []
            return result
        if result.failed is None:
            return result
        indices = sorted({i for i in result.failed if 0 <= i < len(self.events)})
        self.stored += len(self.events) - len(indices)
        self.events = [self.events[i] for i in indices]
        if not self.events:  # "failed" named no event of the batch: all of it was stored
            return dataclasses.replace(SENT, retry_after=result.retry_after)
        return dataclasses.replace(result, failed=None)


def refused(result: SendResult) -> bool:
    """The receiver answered with a server error that may be about the batch (a 500, not a
    503; not a 200 naming records that failed, which may be throttling)."""
    status = result.status
    return status is not None and 500 <= status < 600 and status not in NOT_POISON_STATUSES


def describe(result: SendResult) -> str:
    """The receiver's answer in a few words, for logs and quarantine reasons."""
    message = result.message or result.outcome.value
    if result.status is None or str(result.status) in message:  # "503 Busy: ..." says it
        return message
    return f"{result.status}: {message}"
