"""The core types and the Initial State limits, written once.

An event, the bucket it goes to, the outcome of sending it, and the rules every part checks
events and bucket keys against: the library's log(), the command line, the collector and the
test server all import them from here, so what the client sends is what the collector takes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Union

__all__ = [
    "BAD_BUCKET_KEY_CHARS",
    "EPOCH_MAX_S",
    "EPOCH_MIN_S",
    "INT_MAX",
    "INT_MIN",
    "MAX_BUCKET_KEY_CHARS",
    "MAX_BUCKET_NAME_CHARS",
    "MAX_KEY_CHARS",
    "MAX_STRING_CHARS",
    "SENT",
    "Bucket",
    "Event",
    "Outcome",
    "SendResult",
    "Value",
    "access_key_problem",
    "bucket_key_problem",
]

# ---- limits of an event (the service documents 250 and 2000 to its users) -------------------

MAX_KEY_CHARS = 250
MAX_STRING_CHARS = 2000
# Integers are sent as JSON numbers only inside the int64 range: SQLite (the collector) and most
# JSON consumers store no more. Larger ones are sent as floats when a float64 holds them (the
# low digits are lost: 2**63 + 1 arrives as 9.223372036854776e18); beyond 1.8e308, invalid.
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
# Epochs are seconds from 1970-01-01T00:00Z up to the end of the year 9999: what a four-digit
# ISO 8601 year and Python's datetime can show. The service replaces very old times anyway.
EPOCH_MIN_S = 0.0
EPOCH_MAX_S = 253402300800.0  # 10000-01-01T00:00:00Z, excluded

# ---- limits of a bucket ------------------------------------------------------------------------

MAX_BUCKET_KEY_CHARS = 250
MAX_BUCKET_NAME_CHARS = 250  # longer names are cut, not refused
BAD_BUCKET_KEY_CHARS = frozenset(":\"'")  # they break the service's bucket URLs


def bucket_key_problem(bucket_key: str | None) -> str | None:
    """Why ``bucket_key`` is unusable, or None when it is fine."""
    if not bucket_key:
        return "bucket key missing (X-IS-BucketKey header or bucketKey parameter)"
    if len(bucket_key) > MAX_BUCKET_KEY_CHARS:
        return f"bucket key longer than {MAX_BUCKET_KEY_CHARS} characters"
    if BAD_BUCKET_KEY_CHARS.intersection(bucket_key):
        return "bucket key must not contain : \" or '"
    return None


def access_key_problem(access_key: str) -> str | None:
    """Why ``access_key`` cannot be sent, or None: it travels in an HTTP header, which cannot
    carry control characters (and some requests versions would echo it in their error)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in access_key):
        return "the access key contains control characters; check for a stray line break or tab"
    return None


# ---- the types -------------------------------------------------------------------------------

# An event on the hot path is a plain tuple (key, value, epoch): building a tuple is
# several times cheaper than building an object, and log() must stay well under 1 µs.
Value = Union[bool, int, float, str]
Event = tuple[str, Value, float]


@dataclass(frozen=True)
class Bucket:
    """Where events land: the bucket key (stream id) and its display name."""

    key: str
    name: str = ""


class Outcome(enum.Enum):
    """What happened to one send; the worker decides what to do next from this alone."""

    OK = "ok"  # accepted by the receiver
    RETRY = "retry"  # timeout, connection trouble, 408, 429, 5xx: try again later
    AUTH = "auth"  # 401/403/402 or a refused password: keep the events, stop sending
    BAD = "bad"  # 400: the receiver will never take this batch; quarantine it
    TOO_LARGE = "too_large"  # 413: split and resend


@dataclass(frozen=True)
class SendResult:
    """The result of Sink.send(); sinks return this and never raise across the thread."""

    outcome: Outcome
    status: int | None = None  # HTTP status or None for non-HTTP sinks
    message: str = ""  # human readable; never contains credentials
    retry_after: float | None = None  # seconds the receiver asked us to wait
    # Partial success: the indices (into the batch that was sent) of the events the receiver
    # did not store; every other event of the batch was stored. ``outcome`` then says what to
    # do with the failed ones (RETRY, BAD, AUTH...). None: ``outcome`` is the whole batch's.
    failed: tuple[int, ...] | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def partial(self) -> bool:
        """True when some of the batch was stored and only ``failed`` needs handling."""
        return self.failed is not None and self.outcome is not Outcome.OK


SENT = SendResult(Outcome.OK)
