"""isstreamer: a never-blocking telemetry agent, drop-in successor of ISStreamer."""
from ._version import __version__

__all__ = ["__version__"]
