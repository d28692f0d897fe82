"""Choosing the sink from the configuration."""
from __future__ import annotations

from typing import Any, Callable

from .base import Sink
from .csvfile import CsvFileSink, offline_path
from .initialstate import InitialStateSink
from .v3io import V3IO_SCHEMES, V3ioSink

REDIS_SCHEMES = ("redis://", "rediss://")
REDIS_CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def needs_access_key(api_base: str) -> bool:
    """Redis URLs carry their own credentials; the HTTP API and v3io need an access key."""
    return not api_base.startswith(REDIS_SCHEMES + REDIS_CLUSTER_SCHEMES)


def sink_factory(settings: Any, timeout: float) -> Callable[[], Sink]:
    """A function building a fresh sink (called again in a forked child)."""
    if settings.offline:
        path = offline_path(settings.offline_file)
        return lambda: CsvFileSink(path)
    if settings.api_base.startswith(REDIS_CLUSTER_SCHEMES):
        from .redis_cluster import RedisClusterSink  # redis-py is an optional extra

        cluster_url = settings.api_base
        return lambda: RedisClusterSink(cluster_url, timeout=timeout)
    if settings.api_base.startswith(REDIS_SCHEMES):
        from .redis import RedisSink  # redis-py is an optional extra

        url = settings.api_base
        return lambda: RedisSink(url, timeout=timeout)
    api_base, access_key = settings.api_base, settings.access_key
    if api_base.startswith(V3IO_SCHEMES):
        return lambda: V3ioSink(api_base, access_key, timeout=timeout)
    return lambda: InitialStateSink(api_base, access_key, timeout=timeout)
