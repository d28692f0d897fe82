"""What ISStreamer printed at debug level 1, as INFO log lines: each batch sent, never the key."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .sinks.base import Bucket, Event, SendResult, Sink

log = logging.getLogger("isstreamer")


class LoggedSink:
    """A sink that logs each accepted batch (its size and bucket) at INFO, then and only then.

    The check is one ``isEnabledFor`` per batch, so an application at WARNING pays nothing.
    """

    def __init__(self, sink: Sink) -> None:
        self.inner = sink
        self.address = sink.address

    def send(self, bucket: Bucket, events: Sequence[Event]) -> SendResult:
        result = self.inner.send(bucket, events)
        if (result.ok or result.partial) and log.isEnabledFor(logging.INFO):
            stored = len(events) - len(result.failed or ())
            log.info(
                "sent %d events to bucket %r (%s) at %s",
                stored,
                bucket.key,
                bucket.name,
                self.inner.address,
            )
        return result

    def close(self) -> None:
        self.inner.close()
