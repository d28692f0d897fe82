"""Text that a person or a wire format gives us: typed values and times, one rule each.

Used by the command line (``log``, ``pipe``), legacy and CSV files, the collector (the URL
variant, ``iso8601`` and ``since``/``until``) and the library's string epochs.

Values: surrounding white space is ignored when typing. ``true``/``false`` are booleans,
``[+-]digits`` an int, a decimal or exponent number a float (finite ones; ``nan`` and ``inf``
stay text), anything else is the text as given. ``007`` is 7: pass ``--string`` (or a str
value in Python) to keep the text.

Times: epoch seconds (``1600000000.5``) or ISO 8601 (``2026-12-01``, ``2026-12-01T10:00:00``,
any number of fraction digits, ``Z`` or ``±hh:mm``). A time without a zone is UTC: the zone of
the machine that wrote it is not known to the one that reads it, and a Pi's own zone is often
not set. (A Python ``datetime`` without tzinfo is different: it is local time, as Python's
``datetime.timestamp()`` has it.)
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Union

Value = Union[bool, int, float, str]

MAX_TIME_CHARS = 64  # an ISO 8601 time with every option is about 35 characters
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
_FRACTION = re.compile(r"\.(\d+)")


def parse_value(text: str) -> Value:
    """The typed value of ``text``: a bool, int or finite float when it is one, else ``text``."""
    stripped = text.strip()
    if stripped == "true":
        return True
    if stripped == "false":
        return False
    if _INT.fullmatch(stripped):
        return int(stripped)
    if _FLOAT.fullmatch(stripped):
        number = float(stripped)
        if math.isfinite(number):
            return number
    return text


def parse_time(text: str) -> float:
    """Epoch seconds from epoch-seconds text or ISO 8601 (no zone: UTC); ValueError if neither."""
    stripped = text.strip() if isinstance(text, str) else ""
    if not 0 < len(stripped) <= MAX_TIME_CHARS:
        raise ValueError(f"{text!r:.80} is neither seconds since 1970 nor an ISO 8601 time")
    if _FLOAT.fullmatch(stripped):
        seconds = float(stripped)
        if math.isfinite(seconds):
            return seconds
    iso = stripped[:-1] + "+00:00" if stripped[-1:] in ("Z", "z") else stripped
    # Python before 3.11 reads exactly 3 or 6 fraction digits; writers use any number.
    iso = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], iso, count=1)
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(
            f"{text!r:.80} is neither seconds since 1970 nor an ISO 8601 time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
