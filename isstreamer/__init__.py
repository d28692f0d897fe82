"""isstreamer: a never-blocking telemetry agent, drop-in successor of ISStreamer."""
from ._version import __version__
from .errors import ConfigError, IsStreamerError
from .events import InvalidEvent, InvalidEventType
from .loghandler import StreamerHandler
from .replay import ReplayResult, replay
from .retry import RetryPolicy
from .sinks.base import Bucket, Outcome, SendResult, Sink
from .streamer import Streamer

__all__ = [
    "Bucket", "ConfigError", "InvalidEvent", "InvalidEventType", "IsStreamerError", "Outcome",
    "ReplayResult", "RetryPolicy", "SendResult", "Sink", "Streamer", "StreamerHandler",
    "__version__", "replay",
]
