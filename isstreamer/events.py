"""Event validation and normalisation (log_object flattening is in objects.py).

The common case (a str key, an int/float/bool/str value, no epoch) is checked inline in
Streamer.log(); everything else comes here, so these functions handle every odd input: they
return a value the receiver can store or raise InvalidEvent / InvalidEventType, never anything
else. An event that fails validation never reaches a batch: one bad value would make the
service reject the whole request.
"""

from __future__ import annotations

import datetime as _dt
import numbers
import re
import time
from decimal import Decimal
from typing import Any

from .errors import InvalidEvent, InvalidEventType
from .model import (
    EPOCH_MAX_S,
    EPOCH_MIN_S,
    INT_MAX,
    INT_MIN,
    MAX_KEY_CHARS,
    MAX_STRING_CHARS,
    Event,
    Value,
)
from .objects import Refused, default_prefix, flatten, type_name
from .text import parse_time

LABEL_CHARS = 100  # a key in a warning is cut to this many characters
_KEY_INT_LIMIT = 10**MAX_KEY_CHARS  # ints this large have more digits than a key may have
_EPOCH_INT_BITS = 64  # ints wider than this are far outside the epoch range (no float overflow)


class FixedEpoch(float):
    """An epoch the caller gave: a wall-clock step never re-stamps it (see clock.py).

    Default epochs stay plain floats, so the hot path of log() pays nothing for the mark.
    """

    __slots__ = ()


class DefaultEpoch(float):
    """The time of a log_object() call handed on to log(): still a default epoch."""

    __slots__ = ()


__all__ = [
    "EPOCH_MAX_S",
    "EPOCH_MIN_S",
    "INT_MAX",
    "INT_MIN",
    "MAX_KEY_CHARS",
    "MAX_STRING_CHARS",
    "DefaultEpoch",
    "FixedEpoch",
    "InvalidEvent",
    "InvalidEventType",
    "Refused",
    "clean_text",
    "default_prefix",
    "flatten",
    "key_label",
    "make_event",
    "normalise_epoch",
    "normalise_key",
    "normalise_value",
]


def clean_text(text: str) -> str:
    """``text`` as valid Unicode: surrogate pairs joined, lone surrogates replaced by U+FFFD.

    A lone surrogate ("caf\\udcff", what Python makes of the byte 0xff in a command-line
    argument) cannot be encoded as UTF-8, so no receiver can store it; replacing keeps the
    rest of the text, as any UTF-8 decoder does with a bad byte.
    """
    if text.isascii():  # O(1) in CPython: the common case costs nothing
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def key_label(key: Any) -> str:
    """A short printable name for ``key`` in a warning or an error; never raises."""
    try:
        if type(key) is not str:
            if isinstance(key, int) and not -_KEY_INT_LIMIT < key < _KEY_INT_LIMIT:
                return f"<int of {key.bit_length()} bits>"  # str() of it may raise or take long
            key = str(key)
        return clean_text(str.__str__(key)[:LABEL_CHARS])
    except Exception:  # a key whose str() raises must not turn a warning into a crash
        return f"<{type_name(key)} key whose str() fails>"


def normalise_key(key: Any) -> str:
    """Turn any key into the str the service stores, or raise InvalidEvent."""
    if type(key) is not str:
        if key is None:
            raise InvalidEvent("key must not be None")
        if isinstance(key, int) and not -_KEY_INT_LIMIT < key < _KEY_INT_LIMIT:
            raise InvalidEvent(
                f"key is an int of {key.bit_length()} bits; a key has at most "
                f"{MAX_KEY_CHARS} characters"
            )
        try:
            key = str.__str__(str(key))  # __str__ may return a str subclass: store plain str
        except Exception as exc:
            raise InvalidEvent(
                f"str() of the {type_name(key)} key failed ({type_name(exc)})"
            ) from None
    n = len(key)
    if n > MAX_KEY_CHARS and (key.isascii() or n > 2 * MAX_KEY_CHARS):
        raise InvalidEvent(f"key must be 1-{MAX_KEY_CHARS} characters, got {n}")
    key = clean_text(key)  # joining surrogate pairs can only shorten it
    n = len(key)
    if n == 0 or n > MAX_KEY_CHARS:
        raise InvalidEvent(f"key must be 1-{MAX_KEY_CHARS} characters, got {n}")
    return key


def normalise_value(value: Any) -> Value:
    """Return a JSON-safe bool/int/float/str, or raise InvalidEvent / InvalidEventType."""
    try:
        return _value(value)
    except InvalidEvent:
        raise
    except Exception as exc:  # a foreign __float__, __int__ or .item() that raises
        raise InvalidEvent(
            f"value of type {type_name(value)} cannot be converted ({type_name(exc)})"
        ) from None


def _value(value: Any) -> Value:
    t = type(value)
    if t is bool:
        return value
    if t is int:
        return _int_value(value)
    if t is str:
        return _str_value(value)
    if t is float:
        return _float_value(value)
    if t is Refused:
        raise InvalidEvent(value.reason)
    if isinstance(value, bool):  # subclasses of bool/int/str/float: store the plain type
        return bool(value)
    if isinstance(value, int):
        return _int_value(int(value))
    if isinstance(value, str):
        return _str_value(str.__str__(value))
    if isinstance(value, float):  # numpy.float64 among them
        return _float_value(float(value))
    if isinstance(value, Decimal):
        return _float_value(float(value))  # a signalling NaN raises ValueError: invalid
    if _numpy_kind(value) in ("M", "m"):  # .item() of a datetime64[ns] is an int of nanoseconds
        raise InvalidEventType(
            f"a numpy {type_name(value)} is a time, not a value; pass times as the epoch"
        )
    item = getattr(value, "item", None)  # numpy-style scalars (np.float32(1.5).item() -> 1.5)
    if callable(item) and getattr(value, "ndim", 0) == 0:
        try:
            plain = item()
        except Exception:  # an array with more than one element, or a foreign .item()
            plain = value
        if plain is not value and type(plain) in (bool, int, float, str):
            return _value(plain)
    if isinstance(value, numbers.Real):  # numpy.longdouble, Fraction: .item() gives no float
        return _float_value(float(value))
    if value is None:
        raise InvalidEventType("value must not be None")
    raise InvalidEventType(f"value of type {type_name(value)} is not a bool, number or string")


def _int_value(value: int) -> Value:
    if INT_MIN <= value <= INT_MAX:
        return value
    try:
        return float(value)
    except OverflowError:
        raise InvalidEvent(
            f"integer of {value.bit_length()} bits is too large for a float64 (about 1.8e308)"
        ) from None


def _float_value(value: float) -> float:
    if value - value == 0.0:  # finite: NaN and infinities fail the test
        return value
    raise InvalidEvent(f"value {value!r} is not a finite number")


def _str_value(value: str) -> str:
    n = len(value)
    if n > MAX_STRING_CHARS and (value.isascii() or n > 2 * MAX_STRING_CHARS):
        raise InvalidEvent(f"string value is {n} characters; the limit is {MAX_STRING_CHARS}")
    value = clean_text(value)
    if len(value) > MAX_STRING_CHARS:
        raise InvalidEvent(
            f"string value is {len(value)} characters; the limit is {MAX_STRING_CHARS}"
        )
    return value


def _numpy_kind(obj: Any) -> str:
    """The numpy dtype kind of a scalar ("M" datetime64, "m" timedelta64, ...) or ""."""
    try:
        kind = obj.dtype.kind
    except Exception:
        return ""
    return kind if isinstance(kind, str) else ""


def normalise_epoch(epoch: Any) -> float:
    """Seconds since 1970 as float from a number, a datetime (naive = local time), a date, a
    numpy datetime64 of any unit, or text (epoch seconds or ISO 8601, no zone = UTC: the
    rule of text.parse_time); InvalidEvent outside EPOCH_MIN_S..EPOCH_MAX_S."""
    try:
        seconds = _epoch_seconds(epoch, unwrap=True)
    except InvalidEvent:
        raise
    except Exception as exc:  # OverflowError of a far datetime, a foreign .item() ...
        raise InvalidEvent(
            f"epoch of type {type_name(epoch)} cannot be converted "
            f"({type_name(exc)}: {_short(exc)})"
        ) from None
    if not EPOCH_MIN_S <= seconds < EPOCH_MAX_S:  # NaN fails both comparisons
        raise InvalidEvent(
            f"epoch {seconds!r} is not a time from 1970 to 9999 (seconds "
            f"{EPOCH_MIN_S:.0f} to {EPOCH_MAX_S:.0f})"
        )
    return seconds


def _short(exc: BaseException) -> str:
    try:
        return str(exc)[:LABEL_CHARS]
    except Exception:
        return ""


def _epoch_seconds(epoch: Any, unwrap: bool) -> float:
    if isinstance(epoch, bool):
        raise InvalidEventType("epoch must be a number or a datetime, not bool")
    if isinstance(epoch, float):
        return float(epoch)
    if isinstance(epoch, int):
        if epoch.bit_length() > _EPOCH_INT_BITS:  # float() would overflow beyond 1.8e308
            raise InvalidEvent(
                f"epoch is an int of {epoch.bit_length()} bits: not a time from 1970 to 9999"
            )
        return float(epoch)
    if isinstance(epoch, Decimal):
        return float(epoch)
    if isinstance(epoch, str):  # a CSV reader's "1600000000.5" or "2026-12-01T10:00:00Z"
        try:
            return parse_time(epoch)
        except ValueError as exc:
            raise InvalidEvent(f"epoch {exc}") from None
    if isinstance(epoch, _dt.datetime):
        return epoch.timestamp()
    if isinstance(epoch, _dt.date):
        return _dt.datetime(epoch.year, epoch.month, epoch.day).timestamp()
    kind = _numpy_kind(epoch)
    if kind == "M":
        return _datetime64_seconds(epoch)
    if kind == "m":
        raise InvalidEventType("a numpy timedelta64 is a duration, not an epoch")
    item = getattr(epoch, "item", None)
    if unwrap and callable(item):
        plain = item()
        if plain is not epoch:
            return _epoch_seconds(plain, unwrap=False)
    if isinstance(epoch, numbers.Real):
        return float(epoch)
    raise InvalidEventType(f"epoch of type {type_name(epoch)} is not a number or a datetime")


# numpy datetime64 units as exact fractions of a second (numerator, denominator).
_UNIT_SECONDS: dict[str, tuple[int, int]] = {
    "W": (7 * 86400, 1),
    "D": (86400, 1),
    "h": (3600, 1),
    "m": (60, 1),
    "s": (1, 1),
    "ms": (1, 10**3),
    "us": (1, 10**6),
    "ns": (1, 10**9),
    "ps": (1, 10**12),
    "fs": (1, 10**15),
    "as": (1, 10**18),
}
_DTYPE_UNIT = re.compile(r"\[(\d*)(\w+)\]")
_NAT = INT_MIN  # numpy stores NaT as the smallest int64


def _datetime64_seconds(value: Any) -> float:
    """Epoch seconds of a numpy datetime64 of any unit, without importing numpy."""
    ticks = int(value.astype("int64"))
    if ticks == _NAT:
        raise InvalidEvent("epoch is NaT (not a time)")
    match = _DTYPE_UNIT.search(str(value.dtype.str))
    if not match:
        raise InvalidEventType("a numpy datetime64 without a unit is not an epoch")
    count = int(match.group(1) or 1) * ticks
    unit = match.group(2)
    if unit in ("Y", "M"):  # calendar units: numpy knows the month lengths
        if abs(count) > (10_000 if unit == "Y" else 120_000):
            raise InvalidEvent("epoch is a numpy datetime64 outside the years 1970 to 9999")
        count, unit = int(value.astype("datetime64[D]").astype("int64")), "D"
    if unit not in _UNIT_SECONDS:
        raise InvalidEventType(f"numpy datetime64 unit {unit!r} is not known")
    numerator, denominator = _UNIT_SECONDS[unit]
    return count * numerator / denominator  # int arithmetic, one correctly rounded division


def make_event(key: Any, value: Any, epoch: Any = None) -> Event:
    """Validate and normalise one event; the slow path of Streamer.log()."""
    if epoch is None:
        seconds: float = time.time()
    elif type(epoch) is DefaultEpoch:
        seconds = float(epoch)
    else:
        seconds = FixedEpoch(normalise_epoch(epoch))
    return normalise_key(key), normalise_value(value), seconds
