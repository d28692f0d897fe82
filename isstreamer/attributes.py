"""ISStreamer 2.0.0's public attributes, readable and assignable with effect.

Old code sets ``streamer.BucketKey = ...`` or ``streamer.AccessKey = ...`` after construction;
ISStreamer read those attributes on every request, so each assignment here changes what the
next request does: a bucket change is a ``set_bucket()``, a key, receiver or offline change
builds a new sink for the next batches (and lets a spool held back by a refused key replay).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from .batchlog import LoggedSink
from .compat import apply_debug_level
from .errors import ConfigError
from .model import bucket_key_problem
from .sinks.base import Sink
from .sinks.factory import sink_factory

if TYPE_CHECKING:
    from .delivery import Delivery
    from .sinks.base import Bucket
    from .worker import Worker

log = logging.getLogger("isstreamer")


def check_bucket_key(bucket_key: str) -> None:
    """Raise ConfigError for a bucket key the service would answer with 400 later."""
    problem = bucket_key_problem(bucket_key)
    if problem:
        raise ConfigError(f"bucket_key {bucket_key[:60]!r}: {problem}")


class LegacyAttributes:
    """ISStreamer's CamelCase attributes over the Streamer's own state (a mixin)."""

    settings: Any
    _bucket: Bucket
    _batch_size: int
    _max_buffer: int
    _strict: bool
    _strict_given: bool
    _debug_level: int
    _closed: bool
    _timeout: float
    _make_sink: Callable[[], Sink]
    _sink: Sink
    _user_sink: Sink | None
    _delivery: Delivery
    _worker: Worker
    _retired_sinks: list[Sink]
    Async: bool

    def set_bucket(
        self, bucket_name: str = "", bucket_key: str = "", retries: int | None = None
    ) -> None:
        raise NotImplementedError  # Streamer's

    @property
    def BucketKey(self) -> str:
        return self._bucket.key

    @BucketKey.setter
    def BucketKey(self, bucket_key: str) -> None:
        name = self._bucket.name if self._bucket.name != self._bucket.key else ""
        self.set_bucket(name, bucket_key)

    @property
    def BucketName(self) -> str:
        return self._bucket.name

    @BucketName.setter
    def BucketName(self, bucket_name: str) -> None:
        self.set_bucket(bucket_name, self._bucket.key)

    @property
    def AccessKey(self) -> str:
        """The key itself, as ISStreamer had it; never in the repr or a log line."""
        return str(self.settings.access_key or "")

    @AccessKey.setter
    def AccessKey(self, access_key: str) -> None:
        self._reconfigure(access_key=str(access_key or ""))

    @property
    def StreamApiBase(self) -> str:
        return str(self.settings.api_base)

    @StreamApiBase.setter
    def StreamApiBase(self, api_base: str) -> None:
        self._reconfigure(api_base=str(api_base))

    @property
    def Offline(self) -> bool:
        return bool(self.settings.offline)

    @Offline.setter
    def Offline(self, offline: bool) -> None:
        self._reconfigure(offline=bool(offline))

    @property
    def BufferSize(self) -> int:
        return self._batch_size

    @BufferSize.setter
    def BufferSize(self, buffer_size: int) -> None:
        size = int(buffer_size)
        if size < 1:
            raise ValueError("BufferSize must be at least 1")
        self._batch_size = size
        self._max_buffer = max(self._max_buffer, size)
        self._worker.resize(size, self._max_buffer)

    @property
    def DebugLevel(self) -> int:
        return self._debug_level

    @DebugLevel.setter
    def DebugLevel(self, debug_level: int) -> None:
        self._debug_level = int(debug_level)
        self._strict = self._strict_given or self._debug_level >= 2
        apply_debug_level(self._debug_level)

    @property
    def IsClosed(self) -> bool:
        return self._closed

    def _reconfigure(self, **changes: Any) -> None:
        """Later batches go through a sink built from the changed settings."""
        if self._user_sink is not None:
            raise ConfigError(
                "this Streamer sends to its own sink=...; AccessKey, "
                "StreamApiBase and Offline do not apply to it"
            )
        self.settings.values.update(changes)
        for name in changes:
            self.settings.sources[name] = "attribute"
        make_sink = sink_factory(self.settings, self._timeout)
        sink = LoggedSink(make_sink())
        # The worker may be sending with the old sink right now: close it with the Streamer.
        self._retired_sinks.append(self._sink)
        self._make_sink, self._sink = make_sink, sink
        self._delivery.sink = sink
        log.info("later batches go to %s", sink.address)
        # A spool held back because the old key was refused is worth a try with the new one.
        if self.Async and not self._closed and self._delivery.spool is not None:
            self._delivery.request_replay()
            self._worker.wake_up()
