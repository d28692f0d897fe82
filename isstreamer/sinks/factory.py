"""Choosing the sink from the configuration."""

from __future__ import annotations

from typing import Any, Callable

from .. import schemes
from ..schemes import needs_access_key
from .base import Sink
from .csvfile import CsvFileSink, offline_path
from .initialstate import InitialStateSink
from .v3io import V3ioSink

__all__ = ["needs_access_key", "sink_factory"]


def sink_factory(settings: Any, timeout: float) -> Callable[[], Sink]:
    """A function building a fresh sink (called again in a forked child)."""
    if settings.offline:
        path = offline_path(settings.offline_file)
        return lambda: CsvFileSink(path)
    scheme = schemes.scheme_of(settings.api_base)
    if scheme in schemes.REDIS_CLUSTER:
        from .redis_cluster import RedisClusterSink  # redis-py is an optional extra

        cluster_url = settings.api_base
        return lambda: RedisClusterSink(cluster_url, timeout=timeout)
    if scheme in schemes.REDIS:
        from .redis import RedisSink  # redis-py is an optional extra

        url = settings.api_base
        return lambda: RedisSink(url, timeout=timeout)
    api_base, access_key = settings.api_base, settings.access_key
    if scheme in schemes.V3IO:
        return lambda: V3ioSink(api_base, access_key, timeout=timeout)
    return lambda: InitialStateSink(api_base, access_key, timeout=timeout)
