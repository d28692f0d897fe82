"""Redis Streams sink: one stream per bucket, one entry per event, one round trip per batch.

Layout (``prefix`` defaults to ``"isstreamer:"``)::

    {prefix}{bucket_key}   stream; entry fields key, value (JSON text), epoch (decimal text)
    {prefix}buckets        hash; bucket_key -> bucket_name (bucket_key when the name is empty)

A batch is pipelined without MULTI and every reply is read, so the sink knows which entries
were stored: an error reply half-way through (OOM, a failover) reports only the refused
entries in ``SendResult.failed`` and only those are sent again. When the connection drops
mid-batch, the entries whose replies were read count as stored and the rest as failed; the
ones written but not yet answered are the only duplicates possible (at-least-once).
Consumers that need exactly-once deduplicate on (key, epoch).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

from .. import schemes
from ..errors import ConfigError
from ..model import SENT, Bucket, Event, Outcome, SendResult
from ..redact import redact_url

log = logging.getLogger("isstreamer")

INSTALL_HINT = "the Redis sink needs redis-py: pip install 'isstreamer-agent[redis]'"

AUTH_ERRORS = frozenset({"NOAUTH", "WRONGPASS", "NOPERM"})
# Server errors are retried by default (the worker retries, then spills): the batch is
# built here and cannot be malformed, so OOM, LOADING, READONLY (failover), MASTERDOWN,
# TRYAGAIN/CLUSTERDOWN (resharding), MISCONF (a failing disk) all mean "the server cannot
# take writes right now", and the spool keeps the data while an operator, an eviction
# policy or consumers trimming fix it. Only a key of the wrong type, or a server without
# streams (< 5.0), refuses the batch forever: quarantine it with the server's message.
BAD_ERRORS = frozenset({"WRONGTYPE"})


def _import_redis() -> Any:
    try:
        import redis
        import redis.backoff
        import redis.retry
    except ImportError as exc:  # the extra is optional: most devices talk HTTP
        raise ImportError(INSTALL_HINT) from exc
    return redis


def redis_address(url: str) -> str:
    """The receiver's address, ``scheme://host:port/db``: the URL normalised, with no user,
    password or query, so it is safe to log and to write into spill files. (Messages that
    show a URL as the user gave it use isstreamer.redact.redact_url.)"""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port or 6379
    except ValueError:  # a non-numeric port; redis-py rejects it later with its own error
        port = 6379
    db = parts.path.lstrip("/") or parse_qs(parts.query).get("db", ["0"])[0]
    return f"{parts.scheme}://{host}:{port}/{db}"


def _bulk(arg: str) -> str:
    """A RESP bulk string; the length is in UTF-8 bytes, the text is encoded later."""
    return f"${len(arg.encode())}\r\n{arg}\r\n"


def _encode_float(value: float) -> str:
    if value - value != 0.0:  # NaN and ±inf (inf - inf is NaN): not JSON, consumers choke
        raise ValueError(f"{value!r} is not a JSON number")
    return float.__repr__(value)


def _encode_bool(value: bool) -> str:
    return "true" if value else "false"


# JSON text of a value, by exact type: ~4x cheaper than json.dumps on the hot loop and
# byte-identical to it for these types (json also writes floats with float.__repr__).
_ENCODERS: dict[type, Callable[[Any], str]] = {
    float: _encode_float,
    int: int.__repr__,
    bool: _encode_bool,
    str: encode_basestring_ascii,
}


def _encode_other(value: Any) -> str:
    import json

    return json.dumps(value, allow_nan=False)


class RedisSink:
    """Deliver batches to Redis Streams with XADD, pipelined in one round trip per batch."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        prefix: str = "isstreamer:",
        maxlen: int | None = None,
    ) -> None:
        redis = _import_redis()
        parts = urlsplit(url)
        if parts.scheme not in self.SCHEMES:
            names = " or ".join(f"{name}://" for name in self.SCHEMES)
            raise ConfigError(f"not a {names} URL: {redact_url(url)}")
        self.address = self._address(url)
        # ?prefix=...&maxlen=... in the URL win over the arguments: the URL is the one
        # setting that reaches the sink from the ini file or ISSTREAMER_API_BASE.
        query = parse_qs(parts.query, keep_blank_values=True)
        if "prefix" in query:
            prefix = query.pop("prefix")[-1]
        if "maxlen" in query:
            text = query.pop("maxlen")[-1]
            maxlen = int(text) if text.isdigit() else -1
        if maxlen is not None and maxlen < 1:
            raise ConfigError(f"maxlen must be a whole number of entries above 0 ({self.address})")
        url = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        self.prefix = prefix
        self.maxlen = maxlen
        self._registry = prefix + "buckets"
        self._registered: set[str] = set()
        # Kept only to scrub it from error texts, in both spellings the URL may carry.
        self._secrets = [p for p in {parts.password or "", unquote(parts.password or "")} if p]
        self._connect(redis, url, timeout)
        self._errors = errors = redis.exceptions
        # By class where redis-py has one (some appeared after 4.5), by reply code otherwise.
        self._auth_types = tuple(
            getattr(errors, name)
            for name in (
                "AuthenticationError",
                "AuthorizationError",
                "NoPermissionError",
                "AuthenticationWrongNumberOfArgsError",
            )
            if hasattr(errors, name)
        )
        # redis-py < 5.3 wants a command name; newer versions deprecate passing one.
        version = tuple(int(p) for p in redis.__version__.split(".")[:2] if p.isdigit())
        self._conn_args: tuple[str, ...] = ("XADD",) if version < (5, 3) else ()
        self._key_parts: dict[str, str] = {}  # event key -> its packed "key" field

    SCHEMES: tuple[str, ...] = schemes.REDIS

    @staticmethod
    def _address(url: str) -> str:
        return redis_address(url)

    def _connect(self, redis: Any, url: str, timeout: float) -> None:
        # One attempt per send(): the worker owns retries and backoff, so redis-py's own
        # retry (3 attempts with backoff by default since 6.0) is turned off. TLS for
        # rediss:// verifies the certificate and host name (redis-py's default).
        self._pool = redis.ConnectionPool.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.address!r}, prefix={self.prefix!r}, "
            f"maxlen={self.maxlen!r})"
        )

    def send(self, bucket: Bucket, events: Sequence[Event]) -> SendResult:
        """XADD every event to the bucket's stream in one pipelined round trip."""
        if not events:
            return SENT
        try:
            return self._send(bucket, events)
        except Exception as exc:  # never raise across the thread boundary
            return self._failed(exc)

    def _send(self, bucket: Bucket, events: Sequence[Event]) -> SendResult:
        register = bucket.key not in self._registered
        try:
            payload = self._pack(bucket, events, register)
        except (TypeError, ValueError) as exc:  # a value that is not JSON: never accepted
            return SendResult(Outcome.BAD, message=f"unencodable value: {exc}"[:300])
        errors = self._exchange(self._pool, payload, len(events) + register, int(register))
        if register and not (errors and errors[0][0] == 0):
            self._registered.add(bucket.key)
        return self._partial(errors, int(register), len(events))

    def _exchange(
        self, pool: Any, payload: bytes, expected: int, header: int
    ) -> list[tuple[int, Exception]]:
        """Write ``payload`` on one connection and read its ``expected`` replies back.

        Returns (reply index, error) for each refused or unanswered command. Raises when the
        connection fails before any reply past the first ``header`` ones was read.
        """
        conn = pool.get_connection(*self._conn_args)
        errors: list[tuple[int, Exception]] = []
        read_count = 0
        try:
            # One write, then every reply read back before the socket goes back to the pool,
            # so it never desyncs. An error reply does not stop the commands after it.
            conn.send_packed_command([payload], check_health=False)
            read = conn.read_response
            response_error = self._errors.ResponseError
            for i in range(expected):
                try:
                    read()
                except response_error as exc:
                    errors.append((i, exc))
                read_count = i + 1
        except Exception as exc:
            conn.disconnect()  # a half-read pipeline cannot be reused
            if read_count <= header:
                raise  # no entry confirmed: the whole batch failed
            # Entries answered before the connection broke are stored; the rest is unknown,
            # so it is reported failed and sent again (the only duplicates possible).
            errors.append((read_count, exc))
            errors.extend((i, exc) for i in range(read_count + 1, expected))
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)
        return errors

    def _partial(self, errors: list[tuple[int, Exception]], offset: int, count: int) -> SendResult:
        """The result of a pipeline whose replies ``errors`` failed; ``offset`` non-XADD replies
        come first. The registry HSET failing alone does not fail the batch (it is redone)."""
        failed = tuple(i - offset for i, _ in errors if i >= offset)
        if not failed:
            return SENT
        first = next(exc for i, exc in errors if i >= offset)
        result = self._failed(first)
        message = f"{result.message} ({count - len(failed)} of {count} entries were stored)"
        if len(failed) == count:
            return SendResult(result.outcome, message=message)
        return SendResult(result.outcome, message=message, failed=failed)

    def _pack(self, bucket: Bucket, events: Sequence[Event], register: bool) -> bytes:
        """The RESP bytes of [HSET registry] + one XADD per event, in a single buffer.

        Hand-packed because redis-py's pipeline spends ~60 % of a batch packing
        arguments one by one; this keeps the sink well above 100k events/s.
        """
        stream = self.prefix + bucket.key
        # Everything up to the key's value is the same for every entry of the batch.
        trim = ["MAXLEN", "~", str(self.maxlen)] if self.maxlen is not None else []
        head_args = ["XADD", stream, *trim, "*", "key"]
        head = f"*{len(head_args) + 5}\r\n" + "".join(_bulk(a) for a in head_args)
        keys = self._key_parts
        if len(keys) > 10_000:  # a fleet with ever-new keys must not grow this for ever
            keys.clear()
        encoders = _ENCODERS
        chunks = []
        if register:
            chunks.append(
                "*4\r\n"
                + "".join(
                    _bulk(a)
                    for a in ("HSET", self._registry, bucket.key, bucket.name or bucket.key)
                )
            )
        append = chunks.append
        for key, value, epoch in events:
            part = keys.get(key)
            if part is None:
                part = keys[key] = _bulk(str(key)) + "$5\r\nvalue\r\n"
            text = encoders.get(type(value), _encode_other)(value)
            stamp = repr(epoch)
            append(
                f"{head}{part}${len(text)}\r\n{text}\r\n$5\r\nepoch\r\n${len(stamp)}\r\n{stamp}\r\n"
            )
        return "".join(chunks).encode()

    def _failed(self, exc: BaseException) -> SendResult:
        """Name the outcome of an exception from redis-py; the message never holds the password."""
        errors = self._errors
        text = str(exc).split("\n", 1)[0]
        code = text.split(" ", 1)[0] if text else ""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        message = f"{type(exc).__name__}: {text}"[:300]
        if isinstance(exc, self._auth_types) or code in AUTH_ERRORS:
            hint = "" if self._secrets else " (the URL has no password)"
            return SendResult(
                Outcome.AUTH, message=f"{self.address} refused the credentials{hint}: {message}"
            )
        if isinstance(exc, (errors.ConnectionError, errors.TimeoutError, OSError)):
            # The registry may be gone (a restarted server without persistence): redo it.
            self._registered.clear()
            return SendResult(Outcome.RETRY, message=message)
        if isinstance(exc, errors.ResponseError) and code in BAD_ERRORS:
            return SendResult(Outcome.BAD, message=message)
        if isinstance(exc, errors.ResponseError) and code == "ERR" and "unknown command" in text:
            return SendResult(Outcome.BAD, message=message + " (Redis 5.0 or later is needed)")
        return SendResult(Outcome.RETRY, message=message)

    def close(self) -> None:
        """Close the pool's connections; a later send() would open new ones."""
        try:
            self._pool.disconnect()
        except Exception as exc:  # closing must not raise either
            log.debug("closing %s: %s", self.address, type(exc).__name__)
