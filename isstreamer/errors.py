"""Exceptions that reach the user."""
from __future__ import annotations


class IsStreamerError(Exception):
    """Base class of this package's own errors."""


class ConfigError(IsStreamerError, ValueError):
    """The configuration cannot work (no key, bad URL, unreadable ini); the message says how to fix it."""
