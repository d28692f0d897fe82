"""Sinks: where batches go (Initial State HTTP, Redis Streams, a CSV file, a callable)."""

from __future__ import annotations

from .base import SENT, Bucket, CallableSink, Event, Outcome, SendResult, Sink, as_sink

__all__ = ["SENT", "Bucket", "CallableSink", "Event", "Outcome", "SendResult", "Sink", "as_sink"]
