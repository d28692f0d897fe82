"""Event validation and normalisation, and log_object flattening.

The common case (a str key, an int/float/bool/str value, no epoch) is checked inline in
Streamer.log(); everything else comes here. An event that fails validation never reaches a
batch: one bad value would make the service reject the whole request.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import time
from decimal import Decimal
from typing import Any, Iterator, Optional, Tuple

from .sinks.base import Event, Value

MAX_KEY_CHARS = 250
MAX_STRING_CHARS = 2000
# Integers are sent as JSON numbers only inside the int64 range: SQLite (the collector) and most
# JSON consumers store no more. Larger ones are sent as floats when a float64 holds them.
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1


class InvalidEvent(ValueError):
    """An event the service would reject; raised only in strict mode."""


class InvalidEventType(TypeError, InvalidEvent):
    """A value or epoch of a type the service cannot store."""


def normalise_key(key: Any) -> str:
    """Turn any key into the str the service stores, or raise InvalidEvent."""
    if type(key) is not str:
        if key is None:
            raise InvalidEvent("key must not be None")
        key = str(key)
    n = len(key)
    if n == 0 or n > MAX_KEY_CHARS:
        raise InvalidEvent(f"key must be 1-{MAX_KEY_CHARS} characters, got {n}")
    return key


def normalise_value(value: Any) -> Value:
    """Return a JSON-safe bool/int/float/str, or raise InvalidEvent / InvalidEventType."""
    t = type(value)
    if t is bool or t is int:
        return value
    if t is str:
        if len(value) > MAX_STRING_CHARS:
            raise InvalidEvent(f"string value is {len(value)} characters; the limit is {MAX_STRING_CHARS}")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidEvent(f"value {value!r} is not a finite number")
        return float(value)
    if isinstance(value, bool):  # subclasses of bool/int/str: store the plain type
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return normalise_value(str(value))
    if isinstance(value, Decimal):
        return normalise_value(float(value))
    item = getattr(value, "item", None)  # numpy-style scalars (np.float32(1.5).item() -> 1.5)
    if callable(item) and getattr(value, "ndim", 0) == 0:
        try:
            plain = item()
        except Exception:  # an array with more than one element, or a foreign .item()
            plain = value
        if plain is not value and type(plain) in (bool, int, float, str):
            return normalise_value(plain)
    if value is None:
        raise InvalidEventType("value must not be None")
    raise InvalidEventType(f"value of type {t.__name__} is not a bool, number or string")


def normalise_epoch(epoch: Any) -> float:
    """Seconds since 1970 as float from a number or a datetime (naive = local time)."""
    if isinstance(epoch, bool):
        raise InvalidEventType("epoch must be a number or a datetime, not bool")
    if isinstance(epoch, (int, float, Decimal)):
        e = float(epoch)
        if not math.isfinite(e) or e < 0:
            raise InvalidEvent(f"epoch {epoch!r} is not a time after 1970")
        return e
    if isinstance(epoch, _dt.datetime):
        return epoch.timestamp()
    if isinstance(epoch, _dt.date):
        return _dt.datetime(epoch.year, epoch.month, epoch.day).timestamp()
    item = getattr(epoch, "item", None)
    if callable(item):
        return normalise_epoch(item())
    raise InvalidEventType(f"epoch of type {type(epoch).__name__} is not a number or a datetime")


def make_event(key: Any, value: Any, epoch: Any = None) -> Event:
    """Validate and normalise one event; the slow path of Streamer.log()."""
    return (
        normalise_key(key),
        normalise_value(value),
        time.time() if epoch is None else normalise_epoch(epoch),
    )


# ---- log_object -------------------------------------------------------------------------

_SCALARS = (bool, int, float, str, Decimal)


def default_prefix(obj: Any) -> str:
    """ISStreamer's default: the type name, so a list logs list_0, list_1, ..."""
    return type(obj).__name__


def flatten(obj: Any, prefix: Optional[str]) -> Iterator[Tuple[str, Any]]:
    """Yield (key, value) pairs for every leaf of ``obj``, nested names joined with ``_``.

    The top-level object may be a dict, list/tuple/set, namedtuple (psutil's results),
    dataclass, or plain object (properties and public attributes). Below it only containers,
    namedtuples and dataclasses are walked into: an object an attribute holds (a logger, a
    file, a connection) is skipped rather than flattened into hundreds of meaningless keys.
    A prefix of "" means no prefix.
    """
    return _flatten(obj, prefix, {id(obj)}, top=True)


def _flatten(obj: Any, prefix: Optional[str], path: set, top: bool = False) -> Iterator[Tuple[str, Any]]:
    for name, value in _members(obj, top):
        key = f"{prefix}_{name}" if prefix else str(name)
        if _is_leaf(value):
            yield key, value
        elif id(value) in path or not _is_container(value):
            continue  # a reference cycle, or an object that is not data
        else:
            path.add(id(value))
            yield from _flatten(value, key, path)
            path.discard(id(value))


def _is_container(value: Any) -> bool:
    return isinstance(value, (dict, list, tuple, set, frozenset)) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type))


def _is_leaf(value: Any) -> bool:
    if value is None or isinstance(value, _SCALARS):
        return True
    if callable(getattr(value, "item", None)) and getattr(value, "ndim", None) == 0:
        return True  # numpy-style scalar
    return isinstance(value, (_dt.date, bytes))


def _members(obj: Any, top: bool = True) -> Iterator[Tuple[Any, Any]]:
    if isinstance(obj, dict):
        yield from obj.items()
    elif isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
        yield from zip(obj._fields, obj)
    elif isinstance(obj, (list, tuple)):
        yield from enumerate(obj)
    elif isinstance(obj, (set, frozenset)):
        yield from enumerate(sorted(obj, key=repr))
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for field in dataclasses.fields(obj):
            yield field.name, getattr(obj, field.name)
    elif top:
        yield from _object_members(obj)


def _object_members(obj: Any) -> Iterator[Tuple[str, Any]]:
    """Properties (as ISStreamer logged them) and public, non-callable attributes."""
    seen = set()
    for name in sorted(dir(type(obj))):
        if not name.startswith("_") and isinstance(getattr(type(obj), name, None), property):
            try:
                value = getattr(obj, name)
            except Exception:  # a property that fails is skipped, not fatal
                continue
            seen.add(name)
            yield name, value
    for name, value in sorted(getattr(obj, "__dict__", {}).items()):
        if not name.startswith("_") and name not in seen and not callable(value):
            yield name, value
