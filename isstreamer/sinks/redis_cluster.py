"""Redis Cluster sink: the Redis Streams layout, written through redis-py's RedisCluster.

``redis+cluster://[:password@]host:port[,host:port…]/`` (``rediss+cluster://`` for TLS) names
any number of startup nodes; the client learns the slot map from them. A batch is one bucket,
so one stream, one hash slot and one node: its XADDs are packed as in the standalone sink and
pipelined (no MULTI) to that node in one round trip. Entries answered MOVED, ASK, TRYAGAIN or
CLUSTERDOWN, or cut off by a broken connection, go again through redis-py's cluster pipeline,
which refreshes the slot map and follows the redirections. Each entry's reply decides its
fate, so only refused entries are reported in ``SendResult.failed``; a cluster out of reach
is RETRY, like any outage.

A bucket is one stream key, so one hash slot, so one node: buckets spread across the nodes,
one bucket's rate is bounded by one node. A hash tag in the prefix (``{fleet}:``) puts every
bucket, and the registry, on one slot.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, unquote

from ..model import Bucket, Event, Outcome, SendResult
from ..schemes import REDIS_CLUSTER, split_url
from .redis import _ENCODERS, RedisSink, _encode_other

log = logging.getLogger("isstreamer")

CLUSTER_SCHEMES = REDIS_CLUSTER
DEFAULT_PORT = 6379


def parse_nodes(url: str) -> list[tuple[str, int]]:
    """The (host, port) startup nodes of a cluster URL; ValueError when one is malformed."""
    netloc = split_url(url).netloc.rpartition("@")[2]
    nodes = []
    for item in filter(None, netloc.split(",")):
        if item.startswith("["):  # [IPv6]:port
            host, _, rest = item[1:].partition("]")
            port_text = rest.lstrip(":")
        else:
            host, _, port_text = item.partition(":")
        if not host or (port_text and not port_text.isdigit()):
            raise ValueError(f"not a host:port: {item!r}")
        nodes.append((host, int(port_text) if port_text else DEFAULT_PORT))
    if not nodes:
        raise ValueError("a cluster URL needs at least one host:port")
    return nodes


def cluster_address(url: str) -> str:
    """The cluster's address, ``scheme://host:port,host:port/``: no password or query, so it
    is safe to log and to write into spill files."""
    scheme = split_url(url).scheme
    try:
        nodes = parse_nodes(url)
    except ValueError:
        return f"{scheme}://(malformed nodes)/"
    text = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in nodes)
    return f"{scheme}://{text}/"


class RedisClusterSink(RedisSink):
    """Deliver batches to Redis Streams on a Redis Cluster, one cluster pipeline per batch."""

    SCHEMES = CLUSTER_SCHEMES

    @staticmethod
    def _address(url: str) -> str:
        return cluster_address(url)

    def _connect(self, redis: Any, url: str, timeout: float) -> None:
        import redis.cluster  # noqa: F401 (a submodule: loaded on first use only)

        parts = split_url(url)
        self._nodes = parse_nodes(url)
        options: dict[str, Any] = {
            key: values[-1]
            for key, values in parse_qs(parts.query).items()
            if key.startswith("ssl_")  # e.g. ssl_ca_certs=/etc/ssl/ca.pem for rediss+cluster://
        }
        if parts.scheme.startswith("rediss"):
            options["ssl"] = True
        if parts.username:
            options["username"] = parts.username
        if parts.password:
            options["password"] = unquote(parts.password)
        self._cluster_options = dict(
            options,
            # RESP2 pinned, as for the relay: one reply shape whatever redis-py's default.
            protocol=2,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # One more try after refreshing the slot map (a failover, a resharding); the
            # worker owns every retry beyond that, with its backoff, circuit and spool.
            retry=redis.retry.Retry(redis.backoff.NoBackoff(), 1),
        )
        self._cluster_module = redis.cluster
        errors = redis.exceptions
        self._redirect_types = (
            errors.AskError,
            errors.TryAgainError,
            errors.ClusterDownError,
            errors.ConnectionError,
            errors.TimeoutError,
            OSError,
        )
        self._client: Any = None  # built on first send: the constructor must not need a network

    def _cluster(self) -> Any:
        if self._client is None:
            module = self._cluster_module
            self._client = module.RedisCluster(
                startup_nodes=[module.ClusterNode(h, p) for h, p in self._nodes],
                **self._cluster_options,
            )
        return self._client

    def _send(self, bucket: Bucket, events: Sequence[Event]) -> SendResult:
        try:
            payload = self._pack(bucket, events, register=False)
        except (TypeError, ValueError) as exc:  # a value that is not JSON: never accepted
            return SendResult(Outcome.BAD, message=f"unencodable value: {exc}"[:300])
        try:
            client = self._cluster()
        except Exception:
            self._client = None  # no slot map yet (no node answered): start over next time
            raise
        stream = self.prefix + bucket.key
        errors = self._send_to_slot_node(client, stream, payload, len(events))
        redirected = [i for i, exc in errors if isinstance(exc, self._redirect_types)]
        if redirected:
            # The slot moved, is moving, or its node is unreachable: redis-py's cluster
            # pipeline refreshes the slot map and follows MOVED/ASK for these entries only.
            replies = self._pipeline(client, stream, [events[i] for i in redirected])
            resolved = dict(zip(redirected, replies))
            errors = [(i, resolved.get(i, exc)) for i, exc in errors]
            errors = [(i, exc) for i, exc in errors if isinstance(exc, Exception)]
        if bucket.key not in self._registered and len(errors) < len(events):
            self._register(client, bucket)
        return self._partial(errors, 0, len(events))

    def _send_to_slot_node(
        self, client: Any, stream: str, payload: bytes, count: int
    ) -> list[tuple[int, Exception]]:
        """The fast path: the whole batch is one stream, so one slot and one node; the packed
        XADDs go straight to that node's connection pool (as the standalone sink does)."""
        errors = self._errors
        try:
            pool = client.get_redis_connection(client.get_node_from_key(stream)).connection_pool
            return self._exchange(pool, payload, count, 0)
        except (errors.ConnectionError, errors.TimeoutError, OSError) as exc:
            return [(i, exc) for i in range(count)]  # nothing stored: the pipeline retries all

    def _pipeline(self, client: Any, stream: str, events: Sequence[Event]) -> list[Any]:
        """One reply (or exception) per XADD, sent through redis-py's cluster pipeline."""
        trim = ("MAXLEN", "~", str(self.maxlen)) if self.maxlen is not None else ()
        pipe = client.pipeline(transaction=False)
        for key, value, epoch in events:
            text = _ENCODERS.get(type(value), _encode_other)(value)
            pipe.execute_command(
                "XADD", stream, *trim, "*", "key", str(key), "value", text, "epoch", repr(epoch)
            )
        try:
            return list(pipe.execute(raise_on_error=False))
        except Exception as exc:  # the cluster is unreachable as a whole: all of these failed
            return [exc] * len(events)

    def _register(self, client: Any, bucket: Bucket) -> None:
        """HSET the registry (its own slot, so its own round trip, once per bucket)."""
        try:
            client.execute_command("HSET", self._registry, bucket.key, bucket.name or bucket.key)
        except Exception as exc:  # the events are stored; the registry is retried next time
            log.debug("registering %s: %s", bucket.key, type(exc).__name__)
            return
        self._registered.add(bucket.key)

    def close(self) -> None:
        """Close every node's connections; a later send() would build a new client."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.close()
        except Exception as exc:  # closing must not raise either
            log.debug("closing %s: %s", self.address, type(exc).__name__)
