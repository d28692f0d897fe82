"""isstreamer: a never-blocking telemetry agent, drop-in successor of ISStreamer."""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import ConfigError, InvalidEvent, InvalidEventType, IsStreamerError
from .model import Bucket, Outcome, SendResult

if TYPE_CHECKING:
    from .loghandler import StreamerHandler
    from .replay import ReplayResult, replay
    from .retry import RetryPolicy
    from .sinks.base import Sink
    from .streamer import Streamer

__all__ = [
    "Bucket",
    "ConfigError",
    "InvalidEvent",
    "InvalidEventType",
    "IsStreamerError",
    "Outcome",
    "ReplayResult",
    "RetryPolicy",
    "SendResult",
    "Sink",
    "Streamer",
    "StreamerHandler",
    "__version__",
    "replay",
]

# Imported on first use (PEP 562): `import isstreamer.config` or the collector then load no
# sink, no requests and no tenacity; `from isstreamer import Streamer` loads them as before.
_LAZY = {
    "ReplayResult": ".replay",
    "RetryPolicy": ".retry",
    "Sink": ".sinks.base",
    "Streamer": ".streamer",
    "StreamerHandler": ".loghandler",
    "replay": ".replay",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


class _Package(types.ModuleType):
    """Keeps ``isstreamer.replay`` the function: importing the submodule of the same name would
    otherwise bind the module there (the eager import this replaces bound the function last)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "replay" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
