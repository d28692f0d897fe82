"""HTTP request handling: the Initial State ingest API, the read API and the dashboard files."""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import socket
import time
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

from .._version import __version__
from ..events import clean_text
from ..model import MAX_BUCKET_NAME_CHARS
from . import pages
from .validate import (
    EventError,
    big_int,
    bucket_key_problem,
    check_events,
    parse_limit,
    parse_query_time,
    url_events,
)
from .wire import GuardedHandler, HTTPError

if TYPE_CHECKING:
    from .server import CollectorHTTPServer

log = logging.getLogger("isstreamer.collector")

DEFAULT_LIMIT, MAX_LIMIT = 1000, 100_000
SERVICE = "isstreamer-collector"
_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
    ),
)


class Handler(GuardedHandler):
    """One connection; HTTP/1.1 keep-alive, every response has a Content-Length."""

    protocol_version = "HTTP/1.1"
    server_version = f"{SERVICE}/{__version__}"
    sys_version = ""
    server: "CollectorHTTPServer"

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        if not self.server.begin_request():
            self.close_connection = True
            self._send_json(503, {"message": "shutting down"})
            return
        try:
            self._route()
        except HTTPError as exc:
            self._send_json(exc.status, exc.body)
        except (ConnectionError, TimeoutError, socket.timeout):  # socket.timeout: Python 3.9
            self.close_connection = True
        except Exception:
            log.exception("error handling %s %s", self.command, urlsplit(self.path).path)
            self.close_connection = True
            self._send_json(500, {"message": "internal error"})
        finally:
            self.server.end_request()

    def _route(self) -> None:
        url = urlsplit(self.path)
        # Split before unquoting, so a bucket key with an encoded "/" stays one segment.
        parts = [unquote(p) for p in url.path.split("/")[1:]]
        query = parse_qsl(url.query, keep_blank_values=True)
        get = self.command == "GET"
        if parts[:1] == ["api"]:
            if parts == ["api", "events"]:
                return self._ingest(query)
            if parts == ["api", "buckets"]:
                return self._list_buckets(query) if get else self._create_bucket(query)
            if parts == ["api", "health"] and get:
                return self._health(query)
            if get and len(parts) == 4 and parts[1] == "buckets" and parts[3] in ("keys", "events"):
                return self._read_bucket(parts[2], parts[3], query)
            self._discard_body()
            raise HTTPError(404, "no such endpoint")
        self._discard_body()
        if not get:
            raise HTTPError(405, "method not allowed")
        page = pages.page_for(parts)
        if page is None:
            raise HTTPError(404, "not found")
        body, ctype, cache = page
        self._send(200, body, ctype, (("Cache-Control", cache),))

    # --- authentication -------------------------------------------------------------------

    def _given_key(self, query: Sequence[Tuple[str, str]]) -> str:
        key = self.headers.get("X-IS-AccessKey")
        if key is None:
            key = next((v for k, v in query if k == "accessKey"), "")
        return key

    def _key_accepted(self, query: Sequence[Tuple[str, str]]) -> bool:
        given = self._given_key(query).encode("utf-8", "surrogateescape")
        accepted = False
        for key in self.server.access_keys:
            # compare_digest takes time independent of where the strings differ; check all keys.
            accepted |= hmac.compare_digest(key.encode("utf-8"), given)
        return accepted

    def _require_key(self, query: Sequence[Tuple[str, str]]) -> None:
        if not self._key_accepted(query):
            self._discard_body()
            raise HTTPError(401, "access key missing or not accepted")

    def _require_read_access(self, query: Sequence[Tuple[str, str]]) -> None:
        # Open reads also need a loopback Host header: a web page using DNS rebinding reaches
        # 127.0.0.1 under its own host name, and must not read the data without the key.
        if not (self.server.reads_open and _loopback_host(self.headers.get("Host", ""))):
            self._require_key(query)

    # --- ingest ---------------------------------------------------------------------------

    def _bucket_key(self, query: Sequence[Tuple[str, str]]) -> str:
        bucket_key = self.headers.get("X-IS-BucketKey")
        if bucket_key is None:
            bucket_key = next((v for k, v in query if k == "bucketKey"), "")
        return bucket_key

    def _ingest(self, query: List[Tuple[str, str]]) -> None:
        self._require_key(query)
        body = self._read_body()
        bucket_key = self._bucket_key(query)
        problem = bucket_key_problem(bucket_key)
        if problem:
            raise HTTPError(400, problem)
        now = time.time()
        try:
            rows = check_events(self._json(body), now) if body.strip() else []
            rows += url_events(query, now, first_index=len(rows))
        except EventError as exc:
            raise HTTPError(400, str(exc), event=exc.index, key=exc.key) from None
        self.server.store.ingest(bucket_key, rows, now)
        self._send(204, b"")

    def _create_bucket(self, query: List[Tuple[str, str]]) -> None:
        self._require_key(query)
        body = self._read_body()
        data = self._json(body) if body.strip() else {}
        if not isinstance(data, dict):
            raise HTTPError(400, "body must be an object with bucketKey and bucketName")
        bucket_key = data.get("bucketKey") or self._bucket_key(query)
        name = data.get("bucketName") or ""
        if not isinstance(bucket_key, str) or not isinstance(name, str):
            raise HTTPError(400, "bucketKey and bucketName must be strings")
        bucket_key, name = clean_text(bucket_key), clean_text(name)  # as event keys: no surrogates
        problem = bucket_key_problem(bucket_key)
        if problem:
            raise HTTPError(400, problem)
        if self.server.store.create_bucket(bucket_key, name[:MAX_BUCKET_NAME_CHARS], time.time()):
            self._send_json(201, {"bucketKey": bucket_key, "bucketName": name or bucket_key})
        else:
            self._send(204, b"")

    @staticmethod
    def _json(body: bytes) -> Any:
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

    # --- reads ----------------------------------------------------------------------------

    def _health(self, query: List[Tuple[str, str]]) -> None:
        accepted: Optional[bool] = self._key_accepted(query) if self._given_key(query) else None
        body = {"service": SERVICE, "version": __version__, "readsOpen": self.server.reads_open}
        body["keyAccepted"] = accepted
        self._send_json(200, body)

    def _list_buckets(self, query: List[Tuple[str, str]]) -> None:
        self._require_read_access(query)
        self._send_json(200, self.server.store.buckets())

    def _read_bucket(self, bucket_key: str, what: str, query: List[Tuple[str, str]]) -> None:
        self._require_read_access(query)
        store = self.server.store
        if what == "keys":
            result = store.keys(bucket_key)
        else:
            params = dict(query)
            try:
                limit = parse_limit(params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
                since = parse_query_time(params.get("since"), "since")
                until = parse_query_time(params.get("until"), "until")
            except ValueError as exc:
                raise HTTPError(400, str(exc)) from None
            key = params.get("key") or None
            result = store.events(bucket_key, key=key, since=since, until=until, limit=limit)
        if result is None:
            raise HTTPError(404, "no such bucket")
        self._send_json(200, result)

    # --- responses ------------------------------------------------------------------------

    def _send_json(self, status: int, data: Any) -> None:
        body = json.dumps(data, separators=(",", ":"), allow_nan=False).encode("utf-8")
        self._send(status, body, "application/json", (("Cache-Control", "no-store"),))

    def _send(
        self, status: int, body: bytes, ctype: str = "", headers: Sequence[Tuple[str, str]] = ()
    ) -> None:
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (*_SECURITY_HEADERS, *headers):
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(body)


def _loopback_host(host: str) -> bool:
    """True for Host headers naming this machine: localhost, 127.x.y.z, [::1], with any port."""
    name = host.strip().lower()
    name = name[1 : name.find("]")] if name.startswith("[") else name.rsplit(":", 1)[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
