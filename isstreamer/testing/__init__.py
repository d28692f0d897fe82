"""A local events server for testing code that streams with isstreamer.

``ApiServer`` is a real HTTP server on 127.0.0.1 (a free port by default) that speaks the
Initial State events API, records every request and accepted event, and misbehaves on command:
``fail`` (any status, headers, body), ``hang``, ``reset``, ``delay``, ``drip``, ``trickle`` and
``poison`` apply to the next requests to a path. Point a Streamer at ``server.url``::

    from isstreamer import RetryPolicy, Streamer
    from isstreamer.testing import ApiServer

    with ApiServer(access_keys=["test-key"]) as server:
        server.fail(503, times=2)  # the next two requests get 503: the Streamer retries
        streamer = Streamer(bucket_key="b", access_key="test-key", api_base=server.url,
                            retry_policy=RetryPolicy(initial_wait=0.01, jitter=0))
        streamer.log("temperature", 21.5)
        assert streamer.flush(timeout=10)
        assert server.events_for("b")[0]["value"] == 21.5
        streamer.close()

The server uses the standard library only, and ``import isstreamer`` does not import it.
"""

from __future__ import annotations

from .handler import BUCKETS_PATH, EVENTS_PATH, Request
from .server import DEFAULT_ACCESS_KEY, ApiServer

__all__ = ["BUCKETS_PATH", "DEFAULT_ACCESS_KEY", "EVENTS_PATH", "ApiServer", "Request"]
