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
    """ISStreamer's levels (0 quiet, 1 informative, 2+ everything) on the ``isstreamer`` logger.

    Only for a program that did not configure logging: a level or handler set on the
    ``isstreamer`` logger, or any handler on the root logger (``logging.basicConfig()``), is the
    application's choice and is left as it is. Level 0 changes nothing at all: an unconfigured
    logger shows warnings through logging's last-resort handler anyway.
    """
    if debug_level <= 0 or _configured_by_application():
        return
    log.setLevel(logging.INFO if debug_level == 1 else logging.DEBUG)
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s isstreamer %(levelname)s: %(message)s"))
        handler.set_name(_OWN_HANDLER)
        log.addHandler(handler)


_OWN_HANDLER = "isstreamer-debug-level"  # the handler debug_level added (a later one may adjust)


def _configured_by_application() -> bool:
    own = [h for h in log.handlers if h.get_name() == _OWN_HANDLER]
    if own:
        return False  # an earlier Streamer's debug_level set it up: a later one may change it
    return log.level != logging.NOTSET or bool(log.handlers) or bool(logging.getLogger().handlers)
