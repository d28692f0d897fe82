"""Finding the events a receiver keeps refusing: bisection of a batch (a mixin of Delivery).

A receiver that answers an error for a whole batch while accepting others may be unable to
store one event of it (a poison event). The batch is split in halves until the refused
events are alone, and those are quarantined with the receiver's answer; the rest is
delivered. An outage looks the same at first (both halves fail), so until some part is
accepted only the first half is split, a few levels deep, before all is left for the spool.
"""

from __future__ import annotations

from collections.abc import Sequence

from .circuit import Circuit
from .model import Bucket, Event, Outcome, SendResult
from .report import Account, Pending, describe, refused

BISECT_SENDS_MAX = 64  # requests one poison search may make; what is left then is spilled
BISECT_BLIND_DEPTH = 2  # levels split before any part was accepted (an outage costs 6 sends)


class PoisonSearch:
    """Delivery's bisection, over its sends, its circuit and its quarantine."""

    circuit: Circuit

    def stopping(self) -> bool:
        raise NotImplementedError  # Delivery's

    def _send_once(self, bucket: Bucket, events: Sequence[Event]) -> SendResult:
        raise NotImplementedError  # Delivery's

    def quarantine(
        self, bucket: Bucket, events: Sequence[Event], reason: str, account: Account
    ) -> None:
        raise NotImplementedError  # Delivery's

    def resolve(
        self, bucket: Bucket, pending: Pending, result: SendResult, account: Account
    ) -> tuple[list[Event], SendResult]:
        raise NotImplementedError  # Delivery's

    def _looks_poisoned(self, result: SendResult, events: Sequence[Event]) -> bool:
        # The receiver answered (not a timeout or a refused connection) and did not ask us to
        # wait: it may be one event it cannot store. An outage fails both halves at once.
        return (
            result.outcome is Outcome.RETRY
            and refused(result)
            and len(events) > 1
            and result.retry_after is None
            and not self.circuit.open
            and not self.stopping()
        )

    def _bisect(
        self,
        bucket: Bucket,
        events: Sequence[Event],
        result: SendResult,
        account: Account,
        budget: list[int],
        healthy: bool,
        depth: int = 0,
    ) -> tuple[list[Event], SendResult, bool]:
        """The receiver keeps refusing this batch: split it until the refused events are found.

        ``healthy`` is True once some part was accepted, which shows the receiver is up.
        Until then refused halves may be an outage, so only the first half is split further,
        BISECT_BLIND_DEPTH levels deep, before everything is left for the spool. Returns what
        is left, the answer that left it, and whether the receiver showed it is up.
        """
        half = len(events) // 2
        answers = []
        for part in (events[:half], events[half:]):
            sub = Pending(part)
            if budget[0] <= 0 or self.stopping():
                answers.append((sub, result))
                continue
            budget[0] -= 1
            answers.append((sub, sub.absorb(self._send_once(bucket, part))))
        healthy = healthy or any(r.ok or sub.stored for sub, r in answers)
        left: list[Event] = []
        last = result
        for index, (sub, answer) in enumerate(answers):
            account("sent", sub.stored)
            sub.stored = 0
            refusal = answer.outcome is Outcome.RETRY and refused(answer)
            if refusal and len(sub.events) == 1 and healthy:
                self.quarantine(
                    bucket,
                    sub.events,
                    f"the receiver kept refusing this event while "
                    f"accepting others ({describe(answer)})",
                    account,
                )
                continue
            blind = not healthy and index == 0 and depth < BISECT_BLIND_DEPTH
            if refusal and len(sub.events) > 1 and budget[0] > 0 and (healthy or blind):
                rest, answer, seen_up = self._bisect(
                    bucket, sub.events, answer, account, budget, healthy, depth + 1
                )
                healthy = healthy or seen_up
            elif refusal:
                rest = sub.events
            else:
                rest, answer = self.resolve(bucket, sub, answer, account)
            left.extend(rest)
            last = answer if rest else last
        return left, last, healthy
