"""ISStreamer 2.0.0 compatibility: its debug levels, and defaults told apart from given values."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("isstreamer")


class _DefaultInt(int):
    """A default that is told apart from the same value given explicitly (ini may override it)."""


class _DefaultFloat(float):
    pass


DEFAULT_BUFFER_SIZE = _DefaultInt(10)
DEFAULT_FLUSH_INTERVAL = _DefaultFloat(1.0)


def given(value: Any) -> Any:
    return None if isinstance(value, (_DefaultInt, _DefaultFloat)) or value in ("", None) else value


def apply_debug_level(debug_level: int) -> None:
    # ISStreamer's levels: 0 quiet, 1 informative, 2+ everything.
    if debug_level <= 0 and log.level != logging.NOTSET:
        return  # the application configured the logger itself; leave it be
    log.setLevel(
        logging.WARNING if debug_level <= 0 else logging.INFO if debug_level == 1 else logging.DEBUG
    )
    if debug_level > 0 and not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s isstreamer %(levelname)s: %(message)s"))
        log.addHandler(handler)
