"""How long a server asked us to wait, from its Retry-After and X-RateLimit-* headers.

Absolute times (an HTTP-date Retry-After, X-RateLimit-Reset in unix seconds) are measured
from the server's own clock, its ``Date`` header, not from ours: a Pi without a real-time
clock starts in 1970 and only learns the time from NTP, and a reset "1.7 billion seconds
from now" must not become a hold-off. Every wait is capped.
"""

from __future__ import annotations

import email.utils
import math
import time
from typing import Callable, Protocol

from ..retry import RetryPolicy

WallClock = Callable[[], float]


class Headers(Protocol):
    """What is read of an answer's headers: a case-insensitive ``get`` (requests'
    CaseInsensitiveDict, keepalive.AnswerHeaders)."""

    def get(self, name: str, /) -> str | None: ...


# The longest wait a server can ask for (s); RetryPolicy caps it again for the delivery loop.
MAX_WAIT_S: float = RetryPolicy.max_retry_after
# Our wall clock before this (2020-01-01) is a board that has not synced yet: with no Date
# header from the server, an absolute time cannot be turned into a wait at all.
CLOCK_FLOOR_S = 1_577_836_800.0


def http_date(value: str | None) -> float | None:
    """Unix seconds of an HTTP-date (RFC 9110: IMF-fixdate, RFC 850, asctime); None if bad."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    try:
        return when.timestamp()  # a date without a zone is taken as UTC, as HTTP says
    except (OverflowError, OSError, ValueError):
        return None


def server_now(headers: Headers, clock: WallClock = time.time) -> float | None:
    """Unix seconds at the server when it answered: its Date header, else our wall clock.

    None when neither can be believed: no usable Date and a wall clock before 2020.
    """
    when = http_date(headers.get("Date"))
    if when is not None:
        return when
    now = clock()
    return now if now >= CLOCK_FLOOR_S else None


def parse_retry_after(
    value: str | None, now: float | None, cap_s: float = MAX_WAIT_S
) -> float | None:
    """Seconds from a Retry-After value, at most ``cap_s``; None if absent or bad.

    Delta-seconds need no clock; an HTTP-date is measured from ``now``, the server's time
    (server_now()), and means nothing when that is unknown (None).
    """
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        when = http_date(value)
        if when is None or now is None:
            return None
        seconds = when - now
    return _capped(seconds, cap_s)


def rate_limit_wait(headers: Headers, now: float | None, cap_s: float = MAX_WAIT_S) -> float | None:
    """When X-RateLimit-Remaining says 0, the seconds until X-RateLimit-Reset (unix seconds,
    measured from ``now``, the server's time; None: unknown), at most ``cap_s``."""
    remaining = headers.get("X-RateLimit-Remaining")
    reset = headers.get("X-RateLimit-Reset")
    if remaining is None or reset is None or now is None:
        return None
    try:
        if int(float(remaining)) > 0:
            return None
        return _capped(float(reset) - now, cap_s)
    except (ValueError, OverflowError):  # OverflowError: int(float("inf"))
        return None


def requested_wait(
    headers: Headers, clock: WallClock = time.time, cap_s: float = MAX_WAIT_S
) -> float | None:
    """The wait an answer asks for: Retry-After, else the rate-limit reset; None if neither."""
    now = server_now(headers, clock)
    wait = parse_retry_after(headers.get("Retry-After"), now, cap_s)
    return wait if wait is not None else rate_limit_wait(headers, now, cap_s)


def _capped(seconds: float, cap_s: float) -> float | None:
    if math.isnan(seconds):  # "nan" parses as a float
        return None
    return min(max(0.0, seconds), cap_s)
