"""The relay's side of Redis: bucket streams, their consumer group, reads, acks and trims.

One class for standalone Redis and Redis Cluster. Standalone reads every stream in one
XREADGROUP; a cluster cannot (each stream is its own hash slot, and a command's keys must
share one), so there each stream is read by its own command and only an idle pass blocks.
"""

from __future__ import annotations

import fnmatch
import logging
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, unquote, urlencode, urlunsplit

from .errors import ConfigError
from .redact import redact_url
from .schemes import REDIS_CLUSTER, split_url

log = logging.getLogger("isstreamer")

Entry = tuple[str, Optional[dict[str, str]]]  # (entry id, fields; None once trimmed away)
CLUSTER_SCHEMES = REDIS_CLUSTER
DEFAULT_PREFIX = "isstreamer:"
# The socket must outlast a blocking read: a timeout at or below BLOCK turns every idle
# read into a TimeoutError (redis-py 8's default socket timeout is 5 s).
SOCKET_MARGIN_S = 10.0
CLUSTER_IDLE_WAIT_S = 1.0  # the longest pause between two idle passes over a cluster


def source_address(url: str) -> str:
    """The source's address (``redis://host:port/db`` or the cluster's nodes), without
    credentials or query: how messages and stats name it."""
    from .sinks.redis import redis_address
    from .sinks.redis_cluster import cluster_address

    scheme = split_url(url).scheme
    return cluster_address(url) if scheme in CLUSTER_SCHEMES else redis_address(url)


def connect(
    url: str, *, block_ms: int, timeout_s: float = 10.0
) -> tuple[Callable[[], Any], str, bool]:
    """(client factory, key prefix, is_cluster) for a redis:// or redis+cluster:// URL.

    The factory builds a client decoding to str. A RedisCluster client reads the slot map
    when it is built, so building one can fail while the cluster is down: the caller retries.
    """
    try:
        import redis
        import redis.cluster
    except ImportError:
        raise ImportError(
            "the relay needs redis-py: pip install 'isstreamer-agent[redis]'"
        ) from None
    parts = split_url(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    prefix = query.pop("prefix", [DEFAULT_PREFIX])[-1]
    # RESP2 pinned: the reply shapes parsed here are the same in every redis-py since 4.5.
    options: dict[str, Any] = dict(
        decode_responses=True,
        protocol=2,
        socket_connect_timeout=timeout_s,
        socket_timeout=block_ms / 1000 + SOCKET_MARGIN_S,
    )
    if parts.scheme in CLUSTER_SCHEMES:
        from .sinks.redis_cluster import parse_nodes

        extra: dict[str, Any] = {k: v[-1] for k, v in query.items() if k.startswith("ssl_")}
        if parts.scheme.startswith("rediss"):
            extra["ssl"] = True
        if parts.username:
            extra["username"] = unquote(parts.username)
        if parts.password:
            extra["password"] = unquote(parts.password)
        nodes = [redis.cluster.ClusterNode(h, p) for h, p in parse_nodes(url)]
        return (
            lambda: redis.cluster.RedisCluster(startup_nodes=nodes, **options, **extra),
            prefix,
            True,
        )
    if parts.scheme not in ("redis", "rediss"):
        raise ConfigError(
            f"--from must be a redis://, rediss:// or redis+cluster:// URL, not {redact_url(url)}"
        )
    url = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
    return lambda: redis.Redis.from_url(url, **options), prefix, False


class Source:
    """The bucket streams of one Redis (or cluster) as seen by one consumer of one group."""

    def __init__(
        self,
        client: Any,
        *,
        prefix: str,
        group: str,
        consumer: str,
        pattern: str = "*",
        cluster: bool = False,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.group = group
        self.consumer = consumer
        self.pattern = pattern
        self.cluster = cluster
        self.address = ""  # the URL without credentials, for messages
        self.buckets: dict[str, str] = {}  # bucket key -> name, for the streams we read
        self._claim_cursor: dict[str, str] = {}  # XAUTOCLAIM's scan position per stream
        import redis

        self._response_error = redis.ResponseError

    def stream(self, bucket: str) -> str:
        return self.prefix + bucket

    def bucket_of(self, stream: str) -> str:
        return stream[len(self.prefix) :]

    def discover(self, *, create: bool = True) -> list[str]:
        """Read the bucket registry; create the group on new matching streams. The new ones."""
        registry = self.client.hgetall(self.prefix + "buckets")
        new = []
        for bucket, name in registry.items():
            if not fnmatch.fnmatchcase(bucket, self.pattern):
                continue
            if bucket not in self.buckets:
                if create:
                    self._create_group(self.stream(bucket))
                new.append(bucket)
            self.buckets[bucket] = name or bucket
        return new

    def _create_group(self, stream: str) -> None:
        # From the first entry ("0"): what devices wrote before any relay ran is relayed too.
        try:
            self.client.xgroup_create(stream, self.group, id="0", mkstream=True)
            log.info("created consumer group %s on %s", self.group, stream)
        except self._response_error as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(
        self, *, pending: bool, count: int, block_ms: int | None
    ) -> list[tuple[str, list[Entry]]]:
        """[(stream, entries)]: this consumer's pending entries ("0") or new ones (">")."""
        streams = [self.stream(b) for b in sorted(self.buckets)]
        if not streams:
            return []
        start = "0" if pending else ">"
        # ``count`` is the whole read's budget, shared by the streams: it bounds the relay's
        # memory and its unacknowledged window whatever the number of buckets.
        count = max(1, count // len(streams))
        if not self.cluster:
            reply = self.client.xreadgroup(
                self.group,
                self.consumer,
                dict.fromkeys(streams, start),
                count=count,
                block=None if pending else block_ms,
            )
            return [(s, e) for s, e in self._rows(reply) if e]

        def read_one(stream: str) -> list[tuple[str, list[Entry]]]:
            reply = self.client.xreadgroup(self.group, self.consumer, {stream: start}, count=count)
            return [(s, e) for s, e in self._rows(reply) if e]

        # No BLOCK on a cluster: a blocked XREADGROUP on a node whose cluster went down and
        # came back was seen never to return. The relay pauses between idle passes instead.
        return self._each(streams, read_one)

    def _each(self, streams: list[str], read: Callable[[str], list[Any]]) -> list[Any]:
        """read(stream) for each stream, joined; on a cluster a failing node skips only its
        own streams (the others go on), and only when every stream fails is it an error."""
        if not self.cluster:
            return [row for stream in streams for row in read(stream)]
        import redis

        got: list[Any] = []
        failures = []
        for stream in streams:
            try:
                got.extend(read(stream))
            except (redis.RedisError, OSError) as exc:
                failures.append(exc)
        if failures and len(failures) == len(streams):
            raise failures[-1]
        if failures:
            log.warning(
                "%d of %d streams unreadable: %s", len(failures), len(streams), failures[-1]
            )
        return got

    @staticmethod
    def _rows(reply: Any) -> list[tuple[str, list[Entry]]]:
        # RESP2 (redis-py's default): [[stream, [(id, fields), ...]], ...]
        return [(s, e) for s, e in reply or []]

    def claim(self, *, idle_ms: int, count: int) -> list[tuple[str, list[Entry]]]:
        """XAUTOCLAIM: entries other consumers read but left unacknowledged for idle_ms."""
        streams = [self.stream(b) for b in sorted(self.buckets)]
        count = max(1, count // max(1, len(streams)))

        def claim_one(stream: str) -> list[tuple[str, list[Entry]]]:
            # One XAUTOCLAIM per stream per turn; the cursor goes on from there next turn.
            reply = self.client.xautoclaim(
                stream,
                self.group,
                self.consumer,
                idle_ms,
                start_id=self._claim_cursor.get(stream, "0-0"),
                count=count,
            )
            self._claim_cursor[stream] = reply[0]  # "0-0" once the scan went round
            entries = reply[1]  # Redis 7 adds a third item: deleted ids, already dropped
            return [(stream, entries)] if entries else []

        return self._each(streams, claim_one)

    def ack(self, stream: str, ids: list[str]) -> int:
        return int(self.client.xack(stream, self.group, *ids)) if ids else 0

    def trim(self, stream: str) -> int:
        """XTRIM MINID below what every group has processed; the number of entries removed."""
        floor = None
        for info in self.client.xinfo_groups(stream):
            pending = self.client.xpending(stream, info["name"])
            # The oldest entry a group still needs: its oldest pending one, else the one after
            # its last delivered (we keep that one: MINID keeps ids >= the floor).
            need = (
                pending["min"] if pending and pending.get("pending") else info["last-delivered-id"]
            )
            floor = need if floor is None or _id_key(need) < _id_key(floor) else floor
        if floor is None or floor == "0-0":
            return 0
        return int(self.client.xtrim(stream, minid=floor, approximate=False))

    def status(self) -> list[dict[str, Any]]:
        """Per stream: length, and for our group pending, lag and consumers."""
        rows = []
        for bucket in sorted(self.buckets):
            stream = self.stream(bucket)
            row: dict[str, Any] = {"stream": stream, "length": self.client.xlen(stream)}
            for info in self.client.xinfo_groups(stream):
                if info["name"] == self.group:
                    row.update(
                        pending=info["pending"], lag=info.get("lag"), consumers=info["consumers"]
                    )
            rows.append(row)
        return rows


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
