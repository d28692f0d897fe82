"""The collector's API without sockets: a Request in, a Response out.

The endpoints: ingest, bucket creation, health, and the reads (buckets, one bucket, its
keys, events and series, ``/metrics``), plus the dashboard's pages. The HTTP plumbing
(isstreamer.collector.http) turns a connection into Requests and writes the Responses;
nothing here reads a socket, so the routes are tested by calling ``Routes.handle`` directly.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from email.message import Message
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote, urlsplit

from .._version import __version__
from ..errors import IsStreamerError
from ..events import clean_text
from ..model import MAX_BUCKET_NAME_CHARS
from . import pages, readapi
from .auth import given_key, key_accepted, reads_need_key
from .store import Store
from .validate import (
    EventError,
    big_int,
    bucket_key_problem,
    check_events,
    parse_limit,
    parse_query_time,
    url_events,
)

DEFAULT_LIMIT, MAX_LIMIT = 1000, 100_000
SERVICE = "isstreamer-collector"
Query = list[tuple[str, str]]


class HTTPError(IsStreamerError):
    """Ends a request with ``status`` and a JSON ``{"message": ...}`` body."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, **extra}


class Request:
    """One API request: method, target (path and query as sent), headers, and a body that is
    read only when a route asks for it (``body`` bytes, or a function that reads them)."""

    def __init__(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str] | Message | None = None,
        body: bytes | Callable[[], bytes] = b"",
    ) -> None:
        self.method = method
        self.target = target
        # Names lower-cased; of a repeated header the first wins, as in email.message.Message.
        self.headers: dict[str, str] = {}
        for name, value in (headers or {}).items():
            self.headers.setdefault(name.lower(), value)
        self._body = body
        self.body_read = False

    def read_body(self) -> bytes:
        """The body; HTTPError when its framing is wrong or it is too large."""
        # Marked first: a reader that fails has consumed the body, or closes the connection.
        self.body_read = True
        if callable(self._body):
            self._body = self._body()
        return self._body


@dataclasses.dataclass(frozen=True)
class Response:
    """What to answer: status, body, its content type, and headers beyond the usual ones."""

    status: int
    body: bytes = b""
    content_type: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, status: int, data: Any) -> Response:
        """A JSON answer that no cache keeps."""
        body = json.dumps(data, separators=(",", ":"), allow_nan=False).encode("utf-8")
        return cls(status, body, "application/json", (("Cache-Control", "no-store"),))

    def data(self) -> Any:
        """The decoded JSON body."""
        return json.loads(self.body)


class Routes:
    """The API of one collector: its store, its keys, and whether reads are open."""

    def __init__(
        self,
        store: Store,
        access_keys: Sequence[str],
        reads_open: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.access_keys = access_keys
        self.reads_open = reads_open  # True only when nobody but this machine can connect
        self.clock = clock  # wall time in epoch seconds: ingest and bucket-creation times

    def handle(self, request: Request) -> Response:
        """The answer to ``request``; its HTTPErrors become their JSON answers."""
        try:
            return self._route(request)
        except HTTPError as exc:
            return Response.json(exc.status, exc.body)

    def _route(self, request: Request) -> Response:
        url = urlsplit(request.target)
        # Split before unquoting, so a bucket key with an encoded "/" stays one segment.
        parts = [unquote(p) for p in url.path.split("/")[1:]]
        query = parse_qsl(url.query, keep_blank_values=True)
        get = request.method == "GET"
        if parts[:1] == ["api"]:
            if parts == ["api", "events"]:
                return self._ingest(request, query)
            if parts == ["api", "buckets"]:
                if get:
                    return self._list_buckets(request, query)
                return self._create_bucket(request, query)
            if parts == ["api", "health"] and get:
                return self._health(request, query)
            if get and len(parts) == 3 and parts[1] == "buckets":
                return self._bucket_info(request, parts[2], query)
            if get and len(parts) == 4 and parts[1] == "buckets" and parts[3] in ("keys", "events"):
                return self._read_bucket(request, parts[2], parts[3], query)
            if get and len(parts) == 4 and parts[1] == "buckets" and parts[3] == "series":
                return self._series(request, parts[2], query)
            raise HTTPError(404, "no such endpoint")
        if not get:
            raise HTTPError(405, "method not allowed")
        if parts == ["metrics"]:
            self._require_read_access(request, query)
            body = readapi.metrics(self.store)
            return Response(200, body, readapi.PROMETHEUS_TYPE, (("Cache-Control", "no-store"),))
        page = pages.page_for(parts)
        # A bucket page holds no data, but its 404 tells that a bucket key is unknown: only
        # to those who may read. Others get the page, which asks for the key.
        if page is None or (
            parts[:1] == ["buckets"]
            and self._may_read(request, query)
            and self.store.bucket(parts[1]) is None
        ):
            return _page_response(404, pages.NOT_FOUND)
        return _page_response(200, page)

    # --- authentication -------------------------------------------------------------------

    def _require_key(self, request: Request, query: Query) -> None:
        if not key_accepted(given_key(request.headers, query), self.access_keys):
            raise HTTPError(401, "access key missing or not accepted")

    def _may_read(self, request: Request, query: Query) -> bool:
        return not reads_need_key(self.reads_open, request.headers.get("host")) or key_accepted(
            given_key(request.headers, query), self.access_keys
        )

    def _require_read_access(self, request: Request, query: Query) -> None:
        if not self._may_read(request, query):
            raise HTTPError(401, "access key missing or not accepted")

    # --- ingest ---------------------------------------------------------------------------

    def _ingest(self, request: Request, query: Query) -> Response:
        self._require_key(request, query)
        body = request.read_body()
        bucket_key = _bucket_key(request, query)
        problem = bucket_key_problem(bucket_key)
        if problem:
            raise HTTPError(400, problem)
        now = self.clock()
        try:
            rows = check_events(decode_json(body), now) if body.strip() else []
            rows += url_events(query, now, first_index=len(rows))
        except EventError as exc:
            raise HTTPError(400, str(exc), event=exc.index, key=exc.key) from None
        self.store.ingest(bucket_key, rows, now)
        return Response(204)

    def _create_bucket(self, request: Request, query: Query) -> Response:
        self._require_key(request, query)
        body = request.read_body()
        data = decode_json(body) if body.strip() else {}
        if not isinstance(data, dict):
            raise HTTPError(400, "body must be an object with bucketKey and bucketName")
        bucket_key = data.get("bucketKey") or _bucket_key(request, query)
        name = data.get("bucketName") or ""
        if not isinstance(bucket_key, str) or not isinstance(name, str):
            raise HTTPError(400, "bucketKey and bucketName must be strings")
        bucket_key, name = clean_text(bucket_key), clean_text(name)  # as event keys: no surrogates
        problem = bucket_key_problem(bucket_key)
        if problem:
            raise HTTPError(400, problem)
        if self.store.create_bucket(bucket_key, name[:MAX_BUCKET_NAME_CHARS], self.clock()):
            return Response.json(201, {"bucketKey": bucket_key, "bucketName": name or bucket_key})
        return Response(204)

    # --- reads ----------------------------------------------------------------------------

    def _health(self, request: Request, query: Query) -> Response:
        given = given_key(request.headers, query)
        accepted: bool | None = key_accepted(given, self.access_keys) if given else None
        body = {"service": SERVICE, "version": __version__, "readsOpen": self.reads_open}
        body["keyAccepted"] = accepted
        return Response.json(200, body)

    def _list_buckets(self, request: Request, query: Query) -> Response:
        self._require_read_access(request, query)
        return Response.json(200, self.store.buckets())

    def _bucket_info(self, request: Request, bucket_key: str, query: Query) -> Response:
        self._require_read_access(request, query)
        info = self.store.bucket(bucket_key)
        if info is None:
            raise HTTPError(404, "no such bucket")
        return Response.json(200, info)

    def _series(self, request: Request, bucket_key: str, query: Query) -> Response:
        self._require_read_access(request, query)
        try:
            return Response.json(200, readapi.series(self.store, bucket_key, query, self.clock()))
        except readapi.BadQuery as exc:
            raise HTTPError(400, str(exc)) from None
        except readapi.NotFound as exc:
            raise HTTPError(404, str(exc.args[0])) from None

    def _read_bucket(self, request: Request, bucket_key: str, what: str, query: Query) -> Response:
        self._require_read_access(request, query)
        result: list[dict[str, Any]] | None
        if what == "keys":
            result = self.store.keys(bucket_key)
        else:
            params = dict(query)
            try:
                limit = parse_limit(params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
                since = parse_query_time(params.get("since"), "since")
                until = parse_query_time(params.get("until"), "until")
            except ValueError as exc:
                raise HTTPError(400, str(exc)) from None
            key = params.get("key") or None
            result = self.store.events(bucket_key, key=key, since=since, until=until, limit=limit)
        if result is None:
            raise HTTPError(404, "no such bucket")
        return Response.json(200, result)


def _page_response(status: int, page: tuple[bytes, str, str]) -> Response:
    body, ctype, cache = page
    return Response(status, body, ctype, (("Cache-Control", cache),))


def _bucket_key(request: Request, query: Query) -> str:
    bucket_key = request.headers.get("x-is-bucketkey")
    if bucket_key is None:
        bucket_key = next((v for k, v in query if k == "bucketKey"), "")
    return bucket_key


def decode_json(body: bytes) -> Any:
    """The decoded body, or HTTPError 400 saying why it is not JSON."""
    try:
        return json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        if "integer string conversion" in str(exc):
            # An integer of thousands of digits: parse it as a float, so that check_events
            # refuses that event by name instead of calling the whole body invalid.
            try:
                return json.loads(body, parse_int=big_int)
            except ValueError:
                pass
        raise HTTPError(400, f"body is not valid JSON: {exc}") from None
