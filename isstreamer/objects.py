"""log_object() flattening: any structure to (key, value) pairs, without ever raising."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

MAX_DEPTH = 32  # containers nested deeper than this are counted as invalid, not walked into
_SCALARS = (bool, int, float, str, Decimal)


class Refused:
    """Stands for a part of a structure that cannot be logged (a reference cycle, nesting
    deeper than MAX_DEPTH, a name whose str() fails), so that log() counts it as invalid."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"<not logged: {self.reason}>"


def type_name(obj: Any) -> str:
    """The name of ``obj``'s type, for messages; never raises."""
    try:
        return str(type(obj).__name__)
    except Exception:
        return "object"


def default_prefix(obj: Any) -> str:
    """ISStreamer's default: the type name, so a list logs list_0, list_1, ..."""
    return type_name(obj)


def flatten(obj: Any, prefix: str | None) -> Iterator[tuple[str, Any]]:
    """Yield (key, value) pairs for every leaf of ``obj``, nested names joined with ``_``.

    The top-level object may be a dict, list/tuple/set, namedtuple (psutil's results),
    dataclass, or plain object (properties and public attributes). Below it only containers,
    namedtuples and dataclasses are walked into: an object an attribute holds (a logger, a
    file, a connection) is skipped rather than flattened into hundreds of meaningless keys.
    A prefix of "" means no prefix. What cannot be logged (a reference cycle, nesting deeper
    than MAX_DEPTH, a name whose str() fails) is yielded as a Refused value, so that log()
    counts it as invalid; flatten itself never raises, whatever ``obj`` holds.
    """
    if prefix is not None and type(prefix) is not str:
        name = _name(prefix)
        if isinstance(name, Refused):
            return iter([(f"<{type_name(prefix)} prefix>", name)])
        prefix = name
    return _flatten(obj, prefix, {id(obj)}, 1, top=True)


def _flatten(
    obj: Any, prefix: str | None, path: set, depth: int, top: bool = False
) -> Iterator[tuple[str, Any]]:
    try:
        members = list(_members(obj, top))
    except Exception as exc:  # a dict changed by another thread, a repr() that raises ...
        yield prefix or type_name(obj), Refused(f"its members cannot be read ({type_name(exc)})")
        return
    for name, value in members:
        text = name if type(name) is str else _name(name)
        if isinstance(text, Refused):
            yield f"{prefix}_<{type_name(name)}>" if prefix else f"<{type_name(name)}>", text
            continue
        key = f"{prefix}_{text}" if prefix else text
        try:
            leaf = _is_leaf(value)
            container = not leaf and _is_container(value)
        except Exception:  # a foreign __getattr__ that raises: not data
            continue
        if leaf:
            yield key, value
        elif not container:
            continue  # an object that is not data
        elif id(value) in path:
            yield key, Refused("a reference cycle (the structure contains itself)")
        elif depth >= MAX_DEPTH:
            yield key, Refused(f"nested more than {MAX_DEPTH} levels deep")
        else:
            path.add(id(value))
            yield from _flatten(value, key, path, depth + 1)
            path.discard(id(value))


def _name(name: Any) -> Any:
    """str(name) for a member's name, or Refused when that fails (str(10**5000) raises)."""
    try:
        return str.__str__(str(name))
    except Exception as exc:
        return Refused(f"str() of a {type_name(name)} name failed ({type_name(exc)})")


def _is_container(value: Any) -> bool:
    return isinstance(value, (dict, list, tuple, set, frozenset)) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    )


def _is_leaf(value: Any) -> bool:
    if value is None or isinstance(value, _SCALARS):
        return True
    if callable(getattr(value, "item", None)) and getattr(value, "ndim", None) == 0:
        return True  # numpy-style scalar
    return isinstance(value, (_dt.date, bytes))


def _members(obj: Any, top: bool = True) -> Iterator[tuple[Any, Any]]:
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


def _object_members(obj: Any) -> Iterator[tuple[str, Any]]:
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
