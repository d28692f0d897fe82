"""v3io streams (Iguazio platform): one PutRecords record per event, over the web API.

``v3io+https://<web-api host>[:port]/<container>/<stream path>[?options]`` (``v3io+http://``
for a local endpoint). Each event becomes one record whose ``Data`` is the UTF-8 JSON text
``{"key", "value", "epoch", "bucketKey", "bucketName"}`` (values keep their JSON types).

Options: ``partition=bucket`` (default: one device's events on one shard, in order), ``key``
(per event key) or ``none`` (the platform spreads records); ``shard=N`` pins every record to
shard N; ``create=1`` creates a missing stream with ``shards=N`` (1) and ``retention_hours=H``
(24). A batch is split into requests of at most 1,000 records and MAX_REQUEST_BYTES.

The web API answers per record: records that failed (``FailedRecordCount``) are reported in
SendResult.failed, so only they are sent again; the stored ones never are. The transport
(keep-alive session, TLS verification, error mapping, never the key in a message) is the
HTTP sink's.
"""

from __future__ import annotations

import binascii
import json
import logging
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import requests

from ..errors import ConfigError
from ..model import SENT, Bucket, Event, Outcome, SendResult, access_key_problem
from ..redact import redact_key
from ..schemes import V3IO, prefixes
from .initialstate import InitialStateSink, public_address
from .lean import encode_events

log = logging.getLogger("isstreamer")

V3IO_SCHEMES = prefixes(V3IO)
MAX_RECORDS = 1000  # per PutRecords request: the web API refuses more
# The web API takes JSON bodies up to 10 MB; the margin covers the envelope and rounding.
MAX_REQUEST_BYTES = 9_000_000
PARTITIONS = ("bucket", "key", "none")
_CONTENT_REFUSED = (Outcome.BAD, Outcome.TOO_LARGE)  # the request's fault, not the service's
_OPTIONS = frozenset({"partition", "shard", "create", "shards", "retention_hours"})
# At the top level of the answer only: inside a JSON string the quotes would be escaped.
_ALL_STORED = re.compile(rb'"FailedRecordCount"\s*:\s*0\s*[,}]')
_SPLIT = b'},{"key":'  # between two objects of encode_events' array; never inside a JSON string


def _whole(query: dict[str, list[str]], name: str, default: int, low: int, address: str) -> int:
    text = query.get(name, [str(default)])[-1]
    if not text.isdigit() or int(text) < low:
        raise ConfigError(f"{name} must be a whole number of at least {low} in {address}")
    return int(text)


class V3ioSink(InitialStateSink):
    """Deliver batches to a v3io stream with PutRecords, reporting per-record failures."""

    def __init__(
        self,
        url: str,
        access_key: str,
        *,
        timeout: float = 10.0,
        session: requests.Session | None = None,
        max_records: int = MAX_RECORDS,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        parts = urlsplit(url)
        address = public_address(url)
        problem = access_key_problem(access_key)
        if problem:
            raise ConfigError(problem)
        if not url.startswith(V3IO_SCHEMES) or not parts.hostname:
            raise ConfigError(f"not a v3io+https:// or v3io+http:// URL with a host: {address}")
        container, _, stream = parts.path.strip("/").partition("/")
        if not container or not stream:
            raise ConfigError(
                f"{address} needs a container and a stream path: "
                "v3io+https://<host>/<container>/<stream path>"
            )
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - _OPTIONS)
        if unknown:
            raise ConfigError(
                f"unknown option {', '.join(unknown)} in {address} "
                f"(known: {', '.join(sorted(_OPTIONS))})"
            )
        self.partition = query.get("partition", ["bucket"])[-1]
        if self.partition not in PARTITIONS:
            raise ConfigError(f"partition must be one of {', '.join(PARTITIONS)} in {address}")
        self.shard = _whole(query, "shard", 0, 0, address) if "shard" in query else None
        self.create = query.get("create", ["0"])[-1].lower() in ("1", "true", "yes")
        self.shard_count = _whole(query, "shards", 1, 1, address)
        self.retention_hours = _whole(query, "retention_hours", 24, 1, address)
        self.container, self.stream = unquote(container), unquote(stream)
        self.max_records = max(1, min(max_records, MAX_RECORDS))
        self.max_request_bytes = max_request_bytes
        # https://host[:port]/container/stream: what the SDK calls endpoint + container + path.
        self.endpoint = urlunsplit(
            (parts.scheme[len("v3io+") :], parts.netloc, parts.path.rstrip("/"), "", "")
        )
        super().__init__(self.endpoint, access_key, timeout=timeout, session=session)
        self.address = address  # v3io+https://host/container/stream: the spool's sink address
        self._v3io_headers = {
            "Content-Type": "application/json",
            "User-Agent": self._headers["User-Agent"],
            "X-v3io-session-key": access_key,
        }
        self._pk_cache: dict[str, bytes] = {}
        self._sending = 0  # records in the PutRecords request on the wire

    reads_accepted_body = True  # PutRecords answers 200 with a result per record

    def _template_headers(self, function: str) -> dict[str, str]:
        # The HTTP sink prepares a request per (path, bucket key); here the second part is the
        # web-API function, and every call goes to the stream's URL with a slash.
        return dict(self._v3io_headers, **{"X-v3io-function": function})

    def __repr__(self) -> str:
        return f"V3ioSink({self.address!r}, access_key={redact_key(self._access_key)!r})"

    # ---- sending ---------------------------------------------------------------------------

    def send(self, bucket: Bucket, events: Sequence[Event]) -> SendResult:
        """PutRecords every event, in requests within the limits; report what was not stored."""
        if not events:
            return SENT
        try:
            records = self._records(bucket, events)
        except (TypeError, ValueError) as exc:  # only events that skipped validation get here
            return SendResult(Outcome.BAD, message=f"batch cannot be encoded as JSON: {exc}")
        try:
            return self._put_all(records)
        except Exception as exc:  # never raise across the thread boundary
            log.debug("PutRecords to %s raised", self.address, exc_info=True)
            return SendResult(
                Outcome.RETRY, message=f"PutRecords to {self.address} failed: {type(exc).__name__}"
            )

    def _put_all(self, records: list[bytes]) -> SendResult:
        # Requests go one after the other: a device's records then reach their shard in order.
        # A request refused for its content (400, 413) does not stop the next ones; one that
        # failed for the service (5xx, timeout, key) does: the rest is reported untried.
        failed: list[int] = []
        refusals: list[SendResult] = []
        start = 0
        for end in self._chunk_ends(records):
            result = self._put(records[start:end])
            if not result.ok:
                refusals.append(result)
                if result.failed is not None:
                    failed.extend(start + i for i in result.failed)
                else:
                    failed.extend(range(start, end))
                    if result.outcome not in _CONTENT_REFUSED:
                        failed.extend(range(end, len(records)))
                        break
            start = end
        if not refusals:
            return SENT
        if len(refusals) == 1 and refusals[0].failed is None and len(failed) == len(records):
            return refusals[0]  # nothing was stored: the batch's outcome as it is
        # One outcome for all that failed: retrying beats quarantining a record that was only
        # unlucky; a bad one comes back alone in a smaller batch and is quarantined then.
        worst = next((r for r in refusals if r.outcome not in _CONTENT_REFUSED), refusals[0])
        return SendResult(
            worst.outcome,
            worst.status,
            f"{len(failed)} of {len(records)} records not stored: {worst.message}",
            worst.retry_after,
            tuple(failed),
        )

    def _chunk_ends(self, records: list[bytes]) -> list[int]:
        """End indices of consecutive requests: ≤ max_records and ≤ max_request_bytes each."""
        envelope = len('{"Records":[]}')
        if (
            len(records) <= self.max_records
            and envelope + sum(map(len, records)) + len(records) <= self.max_request_bytes
        ):
            return [len(records)]  # the usual batch: one request
        ends: list[int] = []
        size = count = 0
        for i, record in enumerate(records):
            grown = size + len(record) + 1
            if count and (count >= self.max_records or envelope + grown > self.max_request_bytes):
                ends.append(i)
                grown, count = len(record) + 1, 0
            size, count = grown, count + 1
        ends.append(len(records))
        return ends

    def _put(self, records: list[bytes]) -> SendResult:
        """One PutRecords request; ``failed`` indices are into ``records``."""
        body = b'{"Records":[' + b",".join(records) + b"]}"
        self._sending = len(records)
        result = self._post("/", "PutRecords", body)
        if result.status == 404 and self.create and self.create_stream().ok:
            result = self._post("/", "PutRecords", body)
        if result.outcome is Outcome.TOO_LARGE and len(records) > 1:
            # The service's limit is below ours: halve until it takes them.
            half = len(records) // 2
            return _joined(
                self._put(records[:half]), half, self._put(records[half:]), len(records) - half
            )
        return result

    def create_stream(self) -> SendResult:
        """CreateStream with the URL's shards and retention_hours; an existing stream is fine."""
        body = json.dumps(
            {"ShardCount": self.shard_count, "RetentionPeriodHours": self.retention_hours}
        ).encode()
        result = self._post("/", "CreateStream", body)
        if result.ok or result.status == 409:
            log.info(
                "stream %s/%s ready at %s (%d shards, %d h retention)",
                self.container,
                self.stream,
                self.address,
                self.shard_count,
                self.retention_hours,
            )
            return SENT
        log.warning("cannot create stream %s/%s: %s", self.container, self.stream, result.message)
        return result

    # ---- encoding --------------------------------------------------------------------------

    def _records(self, bucket: Bucket, events: Sequence[Event]) -> list[bytes]:
        """The JSON text of one PutRecords record per event (ASCII: every string is escaped)."""
        tail = (
            ',"bucketKey":'
            + json.dumps(bucket.key)
            + ',"bucketName":'
            + json.dumps(bucket.name or bucket.key)
            + "}"
        ).encode()
        # The HTTP sink's encoder writes the array of {"key","value","epoch"} objects (values
        # typed as json.dumps does, twice as fast); each object gets the bucket fields appended.
        # The split is safe: inside a JSON string every '"' is escaped, so '},{"key":' appears
        # only between two objects.
        cores = encode_events(events)[len(b'[{"key":') : -len(b"}]")].split(_SPLIT)
        if len(cores) != len(events):
            raise ValueError("unexpected event encoding")  # would be a bug in encode_events
        if self.shard is not None:
            where = [f',"ShardId":{self.shard}}}'.encode()] * len(events)
        elif self.partition == "bucket":
            where = [(',"PartitionKey":' + json.dumps(bucket.key) + "}").encode()] * len(events)
        elif self.partition == "key":
            where = [self._key_part(key) for key, _, _ in events]
        else:
            where = [b"}"] * len(events)
        b64 = binascii.b2a_base64
        return [
            b'{"Data":"' + b64(b'{"key":' + core + tail, newline=False) + b'"' + part
            for core, part in zip(cores, where)
        ]

    def _key_part(self, key: str) -> bytes:
        part = self._pk_cache.get(key)
        if part is None:
            if len(self._pk_cache) > 10_000:  # a program inventing keys must not grow this
                self._pk_cache.clear()
            part = self._pk_cache[key] = (',"PartitionKey":' + json.dumps(key) + "}").encode()
        return part

    # ---- v3io's answers, through the HTTP sink's transport --------------------------------

    def _classify(self, response: requests.Response) -> SendResult:
        status = response.status_code
        if status == 404:
            hint = "" if self.create else " (or add ?create=1 to the URL)"
            return SendResult(
                Outcome.AUTH,
                status,
                f"no stream {self.stream!r} in container {self.container!r} at {self.address} "
                f"(404 {_error_name(response)}): create it{hint}; the events are kept",
            )
        if (
            200 <= status < 300
            and response.request is not None
            and response.request.headers.get("X-v3io-function") == "PutRecords"
        ):
            return _put_records_result(response, self._sending)
        return super()._classify(response)


def _joined(first: SendResult, n_first: int, second: SendResult, n_second: int) -> SendResult:
    """The result of two consecutive requests of ``n_first`` and ``n_second`` records."""
    if first.ok and second.ok:
        return SENT
    if first.failed is None and second.failed is None and not first.ok and not second.ok:
        return first  # neither stored anything
    failed: list[int] = []
    for result, offset, size in ((first, 0, n_first), (second, n_first, n_second)):
        if not result.ok:
            failed += [
                offset + i for i in (range(size) if result.failed is None else result.failed)
            ]
    worst = second if not second.ok else first
    return SendResult(worst.outcome, worst.status, worst.message, worst.retry_after, tuple(failed))


def _error_name(response: requests.Response) -> str:
    try:
        doc = json.loads(response.text[:2000])
    except ValueError:
        return response.reason or "Not Found"
    if isinstance(doc, dict):
        return str(doc.get("ErrorCode") or doc.get("ErrorMessage") or response.reason)[:100]
    return response.reason or "Not Found"


def _put_records_result(response: requests.Response, sent: int) -> SendResult:
    """SENT, or RETRY with ``failed`` = the indices (in the request) of records not stored."""
    if _ALL_STORED.search(response.content):
        return SENT  # the common answer, without parsing a thousand results (a third of our CPU)
    try:
        doc: Any = response.json()
        failed_count = int(doc.get("FailedRecordCount") or 0)
    except (ValueError, TypeError, AttributeError):
        # Unknown what was stored: send the request again (its records may then repeat).
        return SendResult(
            Outcome.RETRY,
            response.status_code,
            "unreadable PutRecords answer; the request is sent again",
        )
    if failed_count == 0:
        return SENT
    results = doc.get("Records")
    if not isinstance(results, list) or len(results) != sent:
        return SendResult(
            Outcome.RETRY,
            response.status_code,
            f"{failed_count} records failed and the answer does not say which; "
            "the request is sent again",
        )
    failed = tuple(
        i
        for i, r in enumerate(results)
        if not isinstance(r, dict) or r.get("SequenceNumber") is None
    )
    if not failed:  # the count disagrees with the records; the records are what was stored
        return SENT
    first: dict = next((results[i] for i in failed if isinstance(results[i], dict)), {})
    return SendResult(
        Outcome.RETRY,
        response.status_code,
        f"ErrorCode {first.get('ErrorCode')}: {str(first.get('ErrorMessage', ''))[:200]}",
        failed=failed,
    )
