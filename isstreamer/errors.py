"""The package's exceptions: every one is an IsStreamerError.

Each also keeps the standard base it always had (ValueError, TypeError, OSError), so a caller's
``except ValueError`` still catches it. Where they are raised:

- ConfigError (ValueError): settings that cannot work; here.
- InvalidEvent (ValueError), InvalidEventType (TypeError): a bad event in strict mode; here.
- CorruptSpillFile (ValueError): a spill file that cannot be read back (spool.format).
- UnsafeSpoolPath (OSError): a spool path through a symlink or shared with others (spool.safe_io).
- EventError (ValueError): the collector refusing an event (collector.validate); HTTPError,
  FramingError and TooLarge end a collector request (collector.wire); BadQuery (ValueError)
  and NotFound (LookupError) answer a read the collector cannot serve (collector.readapi).
"""

from __future__ import annotations

__all__ = ["ConfigError", "InvalidEvent", "InvalidEventType", "IsStreamerError"]


class IsStreamerError(Exception):
    """Base class of this package's own errors."""


class ConfigError(IsStreamerError, ValueError):
    """The configuration cannot work (no key, bad URL, unreadable ini); the message says how
    to fix it."""


class InvalidEvent(IsStreamerError, ValueError):
    """An event the service would reject; raised only in strict mode."""


class InvalidEventType(TypeError, InvalidEvent):
    """A value or epoch of a type the service cannot store."""
