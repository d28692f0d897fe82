"""Every exception of the package is an IsStreamerError and keeps its standard base."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import isstreamer
from isstreamer.errors import ConfigError, InvalidEvent, InvalidEventType, IsStreamerError

# Modules that need an optional extra (redis-py) are skipped when it is missing.
_OPTIONAL = ("isstreamer.sinks.redis", "isstreamer.sinks.redis_cluster")


def _package_exceptions() -> list[type]:
    found = []
    for info in pkgutil.walk_packages(isstreamer.__path__, "isstreamer."):
        if info.name.endswith("__main__"):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:
            if info.name in _OPTIONAL:
                continue
            raise
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def test_every_exception_is_an_isstreamer_error() -> None:
    """No module defines an exception outside the IsStreamerError tree."""
    exceptions = _package_exceptions()
    assert len(exceptions) >= 9  # the list in errors.py's docstring
    assert [e.__qualname__ for e in exceptions if not issubclass(e, IsStreamerError)] == []


@pytest.mark.parametrize(
    ("name", "standard"),
    [
        ("isstreamer.errors.ConfigError", ValueError),
        ("isstreamer.errors.InvalidEvent", ValueError),
        ("isstreamer.errors.InvalidEventType", TypeError),
        ("isstreamer.spool.format.CorruptSpillFile", ValueError),
        ("isstreamer.spool.safe_io.UnsafeSpoolPath", OSError),
        ("isstreamer.collector.validate.EventError", ValueError),
    ],
)
def test_standard_bases_are_kept(name: str, standard: type) -> None:
    """Callers' `except ValueError` (or TypeError, OSError) still catch these."""
    module, _, attr = name.rpartition(".")
    exc = getattr(importlib.import_module(module), attr)
    assert issubclass(exc, standard) and issubclass(exc, IsStreamerError)


def test_invalid_event_type_is_an_invalid_event() -> None:
    """A bad type is also a bad event, so one except catches both."""
    assert issubclass(InvalidEventType, InvalidEvent)
    assert not issubclass(ConfigError, InvalidEvent)


def test_public_names_are_the_same_objects() -> None:
    """isstreamer, isstreamer.errors and isstreamer.events export the very same classes."""
    from isstreamer import events

    assert isstreamer.InvalidEvent is events.InvalidEvent is InvalidEvent
    assert isstreamer.ConfigError is ConfigError
