"""Redis Cluster sink: the Redis Streams layout, written through redis-py's RedisCluster.

``redis+cluster://[:password@]host:port[,host:port…]/`` (``rediss+cluster://`` for TLS) names
any number of startup nodes; the client learns the slot map from them. A batch is one
cluster pipeline (no MULTI): XADDs are grouped by node, written to every node first, then
read back; MOVED and ASK replies are followed by the client. Each entry's reply decides its
fate, so a node that fails half-way through reports only its entries in
``SendResult.failed``. A whole cluster out of reach is RETRY, like any outage.

A bucket is one stream key, so one hash slot, so one node: buckets spread across the nodes,
one bucket's rate is bounded by one node. A hash tag in the prefix (``{fleet}:``) puts every
bucket, and the registry, on one slot.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .base import SENT, Bucket, Event, Outcome, SendResult
from .redis import _ENCODERS, RedisSink, _encode_other

log = logging.getLogger("isstreamer")

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
DEFAULT_PORT = 6379


def parse_nodes(url: str) -> list[tuple[str, int]]:
    """The (host, port) startup nodes of a cluster URL; ValueError when one is malformed."""
    netloc = urlsplit(url).netloc.rpartition("@")[2]
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


def redact_cluster_url(url: str) -> str:
    """``scheme://host:port,host:port/`` with no password or query: safe to log and store."""
    scheme = urlsplit(url).scheme
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
    def _redact(url: str) -> str:
        return redact_cluster_url(url)

    def _connect(self, redis: Any, url: str, timeout: float) -> None:
        import redis.cluster  # noqa: F401 (a submodule: loaded on first use only)

        parts = urlsplit(url)
        self._nodes = parse_nodes(url)
        options: dict[str, Any] = {
            key: values[-1] for key, values in parse_qs(parts.query).items()
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
        self._client: Any = None  # built on first send: the constructor must not need a network

    def _cluster(self) -> Any:
        if self._client is None:
            module = self._cluster_module
            self._client = module.RedisCluster(
                startup_nodes=[module.ClusterNode(h, p) for h, p in self._nodes],
                **self._cluster_options)
        return self._client

    def _send(self, bucket: Bucket, events: Sequence[Event]) -> SendResult:
        register = bucket.key not in self._registered
        try:
            commands = self._commands(bucket, events)
        except (TypeError, ValueError) as exc:  # a value that is not JSON: never accepted
            return SendResult(Outcome.BAD, message=f"unencodable value: {exc}"[:300])
        try:
            client = self._cluster()
            pipe = client.pipeline(transaction=False)
        except Exception:
            self._client = None  # no slot map yet (no node answered): start over next time
            raise
        if register:
            pipe.execute_command("HSET", self._registry, bucket.key, bucket.name or bucket.key)
        for args in commands:
            pipe.execute_command(*args)
        # raise_on_error=False: one reply (or exception) per command, in order.
        replies = pipe.execute(raise_on_error=False)
        errors = [(i, r) for i, r in enumerate(replies) if isinstance(r, Exception)]
        if register and not (errors and errors[0][0] == 0):
            self._registered.add(bucket.key)
        if not errors:
            return SENT
        return self._partial(errors, int(register), len(events))

    def _commands(self, bucket: Bucket, events: Sequence[Event]) -> list[tuple[str, ...]]:
        """One XADD argument tuple per event, values already JSON text."""
        stream = self.prefix + bucket.key
        trim = ("MAXLEN", "~", str(self.maxlen)) if self.maxlen is not None else ()
        head = ("XADD", stream, *trim, "*", "key")
        encoders = _ENCODERS
        return [(*head, str(key), "value", encoders.get(type(value), _encode_other)(value),
                 "epoch", repr(epoch)) for key, value, epoch in events]

    def close(self) -> None:
        """Close every node's connections; a later send() would build a new client."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.close()
        except Exception as exc:  # closing must not raise either
            log.debug("closing %s: %s", self.address, type(exc).__name__)
