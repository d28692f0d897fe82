"""The Initial State events API over one keep-alive requests.Session."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from requests.models import PreparedRequest
from requests.utils import get_environ_proxies

from .._version import __version__
from ..failures import (
    classify,
    http_failure,
    one_line,
    receiver_text,
    refused_key_text,
    wrong_address_text,
)
from ..model import SENT, Bucket, Event, Outcome, SendResult
from ..redact import redact_key, scrub
from .keepalive import Answer, as_response
from .lean import ENCODE_ERRORS, LeanAdapter, encode_events, unencodable
from .server_time import (
    MAX_WAIT_S,
    Headers,
    WallClock,
    parse_retry_after,
    rate_limit_wait,
    requested_wait,
    server_now,
)

log = logging.getLogger("isstreamer")

DEFAULT_API_BASE = "https://groker.init.st"
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
AUTH_STATUS = frozenset({401, 402, 403})


def public_address(url: str) -> str:
    """The URL without credentials or query: safe to log and to write into spill files."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def split_api_base(api_base: str) -> tuple[str, str, str]:
    """(base URL, query for every request, access key) from an api_base that may carry
    ``?accessKey=`` (the events API's URL variant): the key travels in a header instead, so
    it is in no request line, proxy log or urllib3 debug line."""
    parts = urlsplit(api_base)
    key, rest = "", []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "accessKey":
            key = value
        else:
            rest.append((name, value))
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return base, ("?" + urlencode(rest)) if rest else "", key


def server_message(response: requests.Response) -> str:
    """The error message a response carries, as one line (an HTML page gives its title)."""
    text = response.text[:4000]
    try:
        doc = json.loads(text)
        msg = doc.get("message", doc) if isinstance(doc, dict) else doc
        if isinstance(msg, dict):
            err = msg.get("error", msg)
            msg = err.get("message") or err.get("type") or err if isinstance(err, dict) else err
        return one_line(str(msg))
    except ValueError:
        content_type = response.headers.get("Content-Type", "")
        return receiver_text(text, content_type) or response.reason or ""


def _safe_repr(obj: object, limit: int = 60) -> str:
    """repr() for a message: bounded, and never raising (the object may be what is broken)."""
    try:
        text = repr(obj)
    except Exception:  # any user type's __repr__ may fail
        text = f"<{type(obj).__name__} with a failing repr>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


class InitialStateSink:
    """Sends batches as JSON arrays to ``POST /api/events``, creating each bucket first."""

    def __init__(
        self,
        api_base: str,
        access_key: str,
        *,
        timeout: float = 10.0,
        session: requests.Session | None = None,
        max_retry_after_s: float = MAX_WAIT_S,
        wall_clock: WallClock = time.time,
    ) -> None:
        """``timeout`` (s) bounds each request as a whole: connecting, sending the body and
        reading the complete answer. A server's requested wait is capped at
        ``max_retry_after_s``; ``wall_clock`` is only read when an answer has no Date."""
        self._base, self._query, key_in_url = split_api_base(api_base.strip())
        self.address = public_address(self._base)
        access_key = access_key or key_in_url
        self.timeout = timeout
        self.max_retry_after_s = max_retry_after_s
        self._wall_clock = wall_clock
        self._access_key = access_key
        if session is None:
            session = requests.Session()
            session.mount("https://", LeanAdapter())
            session.mount("http://", LeanAdapter())
        self._session = session
        # Requests go straight to the adapter: Session.send would add hooks, two rounds of
        # cookie extraction and a redirect check to every request, none of which apply here.
        self._adapter = session.get_adapter(self._base + "/")
        # A session of the caller's with another adapter gets requests' per-operation
        # timeouts only: the deadline needs connections that report to the watchdog.
        self._watchdog = getattr(self._adapter, "watchdog", None)
        # Only our own adapter has the kept-alive fast path; a caller's adapter sees every request.
        self._lean = self._adapter if isinstance(self._adapter, LeanAdapter) else None
        self._created: set[str] = set()
        # Resolved once: Session.request() re-reads proxy variables and ~/.netrc on every call,
        # which costs more CPU than the request itself on a small board.
        self._proxies = get_environ_proxies(self._base) if self._session.trust_env else {}
        # ... and so is the CA bundle Session.request() would take from the environment.
        self._env_ca_bundle = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if self._session.trust_env
            else None
        )
        self._headers: dict[str, str] = {
            "Content-Type": "application/json",
            "Accept-Version": "~0",
            "User-Agent": f"isstreamer/{__version__}",
            "X-IS-AccessKey": access_key,
        }
        self._templates: dict[tuple[str, str], PreparedRequest] = {}

    # True for a receiver whose 2xx answers say what was stored (v3io's per-record results):
    # the kept-alive path then hands their body to _classify() too.
    reads_accepted_body = False

    def __repr__(self) -> str:
        return f"InitialStateSink({self.address!r}, access_key={redact_key(self._access_key)!r})"

    def send(self, bucket: Bucket, events: Sequence[Event]) -> SendResult:
        if bucket.key not in self._created:
            created = self.create_bucket(bucket)
            if not created.ok:
                return created
        try:
            body = encode_events(events)
        except ENCODE_ERRORS:  # only events that skipped validation get here
            return self._unencodable(events)
        return self._post("/api/events", bucket.key, body)

    @staticmethod
    def _unencodable(events: Sequence[Event]) -> SendResult:
        found = unencodable(events)
        if found is None:  # the batch failed as a whole (nothing to name): say so
            return SendResult(Outcome.BAD, message="batch cannot be encoded as JSON")
        index, reason = found
        return SendResult(
            Outcome.BAD,
            message=f"event {index} (key {_safe_repr(events[index][0])}) cannot be encoded "
            f"as JSON: {reason}",
        )

    def create_bucket(self, bucket: Bucket) -> SendResult:
        body = json.dumps(
            {"bucketKey": bucket.key, "bucketName": bucket.name or bucket.key}
        ).encode()
        result = self._post("/api/buckets", bucket.key, body)
        if result.ok:
            self._created.add(bucket.key)
            log.info("bucket %r ready at %s", bucket.key, self.address)
        return result

    def _template(self, path: str, bucket_key: str) -> PreparedRequest:
        # The URL and headers are prepared once per (path, bucket); each request reuses them.
        # Preparing from scratch (URL parsing and quoting, header validation and merging), or
        # PreparedRequest.copy() with its cookie jar, costs more than a small batch's request.
        key = (path, bucket_key)
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = requests.Request(
                "POST",
                self._base + path + self._query,
                headers=self._template_headers(bucket_key),
                data=b"x",
            ).prepare()  # Content-Length is each request's own
        return template

    def _template_headers(self, bucket_key: str) -> dict[str, str]:
        """The headers of every request for ``bucket_key`` (a subclass speaking another API
        of the same transport names its own)."""
        return dict(self._headers, **{"X-IS-BucketKey": bucket_key})

    @staticmethod
    def _request(template: PreparedRequest, body: bytes) -> PreparedRequest:
        req = PreparedRequest()
        req.method = "POST"
        req.url = template.url
        req.headers = template.headers.copy()
        req.headers["Content-Length"] = str(len(body))
        req.body = body
        return req

    def _verify(self) -> Any:
        """What verifies TLS (bool or CA bundle path): the session's, read per request, or
        the environment's bundle when the session just says True, as Session.request does."""
        verify = self._session.verify
        return self._env_ca_bundle if verify is True and self._env_ca_bundle else verify

    def _post(self, path: str, bucket_key: str, body: bytes) -> SendResult:
        # ``timeout`` bounds the whole request: urllib3 applies it to each socket operation
        # (connect, each send, each receive), the watchdog to all of them together.
        watchdog = self._watchdog if self.timeout is not None else None
        late = False
        template = self._template(path, bucket_key)
        verify = self._verify()
        lean = self._lean
        answer: Answer | None = None
        try:
            if watchdog is not None:
                watchdog.arm(self.timeout)
            try:
                if lean is not None:  # a kept-alive connection, if the pool has one
                    answer = lean.post_kept_alive(
                        template,
                        body,
                        self.timeout,
                        verify,
                        self._session.cert,
                        self._proxies,
                    )
                if answer is None:
                    response = self._adapter.send(
                        self._request(template, body),
                        timeout=self.timeout,
                        verify=verify,
                        cert=self._session.cert,
                        proxies=self._proxies,
                    )
                    _ = response.content  # read to the end: the connection goes back to the pool
            finally:
                late = watchdog is not None and watchdog.disarm()
        except requests.RequestException as exc:
            if late or isinstance(exc, requests.Timeout):
                return SendResult(
                    Outcome.RETRY,
                    message=f"no complete answer from {self.address} within {self.timeout:g} s",
                )
            return self._failed(exc)
        if answer is not None and lean is not None:
            if 200 <= answer[0] < 300 and not self.reads_accepted_body:
                # the common case needs only a few headers
                return self._accepted(answer[0], answer[2])
            response = as_response(answer, template, lean)
        try:
            return self._classify(response)
        finally:
            response.close()

    def _failed(self, exc: requests.RequestException) -> SendResult:
        return SendResult(Outcome.RETRY, message=classify(exc, self.address).text)

    def _classify(self, response: requests.Response) -> SendResult:
        status = response.status_code
        if 200 <= status < 300:
            return self._accepted(status, response.headers)
        if status in RETRYABLE_STATUS or status >= 500:
            wait = requested_wait(response.headers, self._wall_clock, self.max_retry_after_s)
            return SendResult(
                Outcome.RETRY,
                status,
                http_failure(status, response.reason, self._scrub(server_message(response))),
                retry_after=wait,
            )
        if status in AUTH_STATUS:
            cause = refused_key_text(status)
            return SendResult(
                Outcome.AUTH,
                status,
                f"{cause}; key {redact_key(self._access_key)}; "
                "the events are kept until this is fixed",
                retry_after=parse_retry_after(
                    response.headers.get("Retry-After"),
                    self._server_now(response),
                    self.max_retry_after_s,
                ),
            )
        if status == 413:
            return SendResult(Outcome.TOO_LARGE, status, "413 request body too large")
        if status == 400:
            message = self._scrub(server_message(response))
            return SendResult(Outcome.BAD, status, f"400 Bad Request: {message}")
        # 3xx/404/405...: a wrong api_base. Keep the events and probe, as for a refused key.
        return SendResult(
            Outcome.AUTH, status, wrong_address_text(status, response.reason, self.address)
        )

    def _accepted(self, status: int, headers: Headers) -> SendResult:
        """A 2xx: sent, with the wait its rate-limit headers ask for before the next request."""
        now = server_now(headers, self._wall_clock)
        pace = rate_limit_wait(headers, now, self.max_retry_after_s)
        return SENT if pace is None else SendResult(Outcome.OK, status, retry_after=pace)

    def _server_now(self, response: requests.Response) -> float | None:
        return server_now(response.headers, self._wall_clock)

    def _scrub(self, text: str) -> str:
        """A receiver may echo the request back: never let the key into a message."""
        return scrub(text, self._access_key)

    def close(self) -> None:
        self._session.close()
