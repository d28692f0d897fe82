"""Incoming events checked against the Initial State rules, with errors that name the culprit."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from ..errors import IsStreamerError
from ..events import clean_text

# The limits are the client's: what it sends is what the collector takes.
from ..model import (
    EPOCH_MAX_S,
    INT_MAX,
    INT_MIN,
    MAX_KEY_CHARS,
    MAX_STRING_CHARS,
    Value,
    bucket_key_problem,  # noqa: F401 (the handler imports it from here)
)
from ..text import parse_time, parse_value

Row = tuple[str, Value, float]  # (key, value, epoch): the store takes these as they are

# The service replaces timestamps this old by its own clock. Doing the same keeps a Pi that booted
# without network time (its clock says 1970) from writing rows that retention would drop at once.
STALE_AFTER_S = 10 * 365.25 * 86400
# Query parameters of the URL variant that are credentials, not events.
URL_RESERVED = frozenset({"accessKey", "bucketKey"})
_KEY_RULE = f"key must be a string of 1 to {MAX_KEY_CHARS} characters"


class EventError(IsStreamerError, ValueError):
    """An event (or the body) that breaks the rules; ``index`` is its position in the request."""

    def __init__(self, index: int | None, key: Any, reason: str) -> None:
        where = "body" if index is None else f"event {index}"
        if isinstance(key, str) and key:
            where += " (key " + json.dumps(key[:60]) + ")"
        super().__init__(f"{where}: {reason}")
        self.index = index
        # Echoed in the answer: cut, so a 1 MB key does not come back as a 1 MB error.
        self.key = clean_text(key[: MAX_KEY_CHARS + 1]) if isinstance(key, str) else None


def iso_time(text: Any) -> float | None:
    """Epoch seconds from the ``iso8601`` field (the one time rule of isstreamer.text), or None."""
    if not isinstance(text, str):
        return None
    try:
        return parse_time(text)
    except ValueError:
        return None


def check_events(payload: Any, now: float) -> list[Row]:
    """Turn a decoded JSON body (array of events or one event) into rows, or raise EventError."""
    if isinstance(payload, dict):
        items: list[Any] = [payload]
    elif isinstance(payload, list):
        items = payload
    else:
        raise EventError(None, None, "must be a JSON array of events or one event object")
    stale = now - STALE_AFTER_S
    rows: list[Row] = []
    append = rows.append
    # One pass with exact type checks: this loop is most of the CPU an ingest request costs.
    for index, event in enumerate(items):
        if type(event) is not dict:
            raise EventError(index, None, "must be an object with key, value and epoch or iso8601")
        key = event.get("key")
        if type(key) is not str:
            # ISStreamer sent whatever the caller passed as a key; it meant str(key).
            if type(key) not in (int, float) or key != key or key in (math.inf, -math.inf):
                raise EventError(index, None, _KEY_RULE)
            key = str(key)
        elif not key.isascii():
            key = clean_text(key)  # a lone surrogate ("\udcff" in the JSON) becomes U+FFFD
        if not 0 < len(key) <= MAX_KEY_CHARS:
            raise EventError(index, key, _KEY_RULE)
        value: Any = event.get("value")
        kind = type(value)
        if kind is float:
            if not math.isfinite(value):
                raise EventError(index, key, "value must be a finite number")
        elif kind is int:
            if not INT_MIN <= value <= INT_MAX:
                value = _int_as_float(index, key, value)
        elif kind is str:
            if not value.isascii():
                value = clean_text(value)
            if len(value) > MAX_STRING_CHARS:
                raise EventError(
                    index, key, f"string value longer than {MAX_STRING_CHARS} characters"
                )
        elif kind is not bool:
            raise EventError(index, key, "value must be a boolean, a finite number or a string")
        epoch: Any = event.get("epoch")
        if epoch is None:
            iso = event.get("iso8601")
            if iso is None:
                epoch = now
            else:
                epoch = iso_time(iso)
                if epoch is None:
                    raise EventError(index, key, "iso8601 is not an ISO 8601 date and time")
        elif type(epoch) is float or type(epoch) is int:
            if not epoch < EPOCH_MAX_S:  # NaN, infinity, far future (ints compare exactly)
                raise EventError(index, key, "epoch must be seconds since 1970, before 10000")
            epoch = float(epoch) if epoch >= stale else now
        else:
            raise EventError(index, key, "epoch must be a number of seconds since 1970")
        if epoch < stale:
            epoch = now
        append((key, value, epoch))
    return rows


def _int_as_float(index: int, key: str, value: int) -> float:
    """An integer beyond int64 (what SQLite stores) as the nearest float64, as the client does."""
    try:
        return float(value)
    except OverflowError:
        raise EventError(index, key, "integer value too large for a float64") from None


def big_int(text: str) -> int | float:
    """json.loads' ``parse_int`` for a body with integers longer than int() parses (4,300
    digits in Python 3.11+): a float, infinite if need be, so that the event is refused by
    name instead of the whole body."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def url_events(params: Iterable[tuple[str, str]], now: float, first_index: int = 0) -> list[Row]:
    """Rows from the URL variant (``?temperature=21.5&door=open``), all stamped ``now``."""
    rows: list[Row] = []
    index = first_index
    for key, text in params:
        if key in URL_RESERVED:
            continue
        if not 0 < len(key) <= MAX_KEY_CHARS:
            raise EventError(index, key, _KEY_RULE)
        if len(text) > MAX_STRING_CHARS:
            raise EventError(index, key, f"string value longer than {MAX_STRING_CHARS} characters")
        rows.append((key, parse_value(text), now))
        index += 1
    return rows


def parse_limit(text: str | None, default: int, cap: int, name: str = "limit") -> int:
    """A count query parameter (``limit``): a positive integer, at most ``cap``; ValueError."""
    if not text:
        return default
    try:
        number = float(text)
    except ValueError:
        number = 0.0
    if not 1 <= number <= 1e12 or number != int(number):
        raise ValueError(f"{name} must be a positive integer")
    return min(int(number), cap)


def parse_query_time(text: str | None, name: str) -> float | None:
    """A ``since``/``until`` query parameter: epoch seconds or ISO 8601; ValueError if neither."""
    if not text:
        return None
    moment = iso_time(text)
    if moment is None:
        raise ValueError(f"{name} must be epoch seconds or an ISO 8601 time")
    return moment
