"""The types of the public API, precise enough for a type checker to catch a wrong argument.

``log(key, None)`` or ``log("t", 21.5, epoch=[...])`` are errors that mypy and pyright now
report in user code, before a device drops the event at run time.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Any, Callable, Protocol, TypedDict, Union

from .sinks.base import Sink


class SupportsItem(Protocol):
    """A numpy scalar (np.int64, np.float32, np.datetime64): ``.item()`` gives the plain value."""

    def item(self) -> Any: ...


#: A key is any object: its ``str()`` (1-250 characters) is what the service stores.
Key = object
#: What ``log()`` takes as a value; Decimal and numpy scalars are turned into plain numbers.
LogValue = Union[bool, int, float, str, Decimal, SupportsItem]
#: Seconds since 1970, a datetime (naive: local time), a date, epoch or ISO 8601 text
#: (no zone: UTC), a numpy datetime64, or None for the time of the call.
Epoch = Union[float, int, Decimal, _dt.datetime, _dt.date, str, SupportsItem, None]


class EventDict(TypedDict):
    """One event as a callable sink receives it."""

    key: str
    value: bool | int | float | str
    epoch: float


#: ``sink=``: an object with ``send()``/``close()``, or a callable taking a list of events.
UserSink = Union[Sink, Callable[[list[EventDict]], Any], None]
