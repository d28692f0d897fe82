"""The lean request path of the HTTP sink: a JSON encoder for event batches and an adapter.

Both keep the exact behaviour of what they replace (``json.dumps`` over one dict per event,
requests' ``Session.send``) and drop only work that does not apply to this sink. On a small
board the HTTP layer, not log(), is where the CPU of a delivered event goes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3.exceptions import HTTPError as Urllib3Error

from ..model import Event
from .deadline import Watchdog, watch_pool
from .keepalive import Answer, exchange, request_head

_encode_str = json.encoder.encode_basestring_ascii  # what json.dumps uses for str (C)
_float_repr = float.__repr__  # ... for float
_int_repr = int.__repr__  # ... for int
_HEADS: dict[str, str] = {}  # key -> '{"key":<key>,"value":' (keys repeat in every batch)
_HEADS_MAX = 4096
_UNSET = object()


def _scalar(value: Any) -> str:
    # Anything but plain finite numbers and str, exactly as json.dumps would write it (and
    # raising as it would for NaN, infinity or a type JSON does not have).
    return json.dumps(value, allow_nan=False)


def encode_events(events: Sequence[Event]) -> bytes:
    """The JSON array of {"key", "value", "epoch"} objects, byte for byte what
    ``json.dumps(..., separators=(",", ":"), allow_nan=False)`` writes, in half the time.

    The C encoder re-escapes every key of every dict and first needs a dict per event; here
    the key part is cached per key and the values are formatted with the same functions
    json uses. Raises ValueError/TypeError as json.dumps does.
    """
    heads = _HEADS
    parts: list[str] = []
    append = parts.append
    value: Any
    epoch: Any
    last_epoch: Any = _UNSET  # log_object() gives all its events one epoch object: format it once
    when = ""
    for key, value, epoch in events:
        head = heads.get(key)
        if head is None:
            if len(heads) >= _HEADS_MAX:  # a program inventing keys must not grow this forever
                heads.clear()
            head = heads[key] = '{"key":' + _scalar(key) + ',"value":'
        kind = type(value)
        if kind is float and value - value == 0.0:  # finite (NaN and inf fail the test)
            text = _float_repr(value)
        elif kind is str:
            text = _encode_str(value)
        elif kind is bool:
            text = "true" if value else "false"
        elif kind is int:
            text = _int_repr(value)
        else:
            text = _scalar(value)
        if epoch is not last_epoch:
            kind = type(epoch)
            if kind is float and epoch - epoch == 0.0:
                when = _float_repr(epoch)
            elif kind is int:
                when = _int_repr(epoch)
            else:
                when = _scalar(epoch)
            last_epoch = epoch
        append(f'{head}{text},"epoch":{when}}}')
    return ("[" + ",".join(parts) + "]").encode()


# What encoding an event can raise: json's errors, int.__repr__ past its digit limit
# (ValueError), a value whose own methods fail or nest too deep.
ENCODE_ERRORS = (TypeError, ValueError, OverflowError, RecursionError)


def unencodable(events: Sequence[Event]) -> tuple[int, str] | None:
    """(index, reason) of the first event ``encode_events`` refuses; None if all encode."""
    for index, event in enumerate(events):
        try:
            encode_events((event,))
        except ENCODE_ERRORS as exc:
            return index, f"{type(exc).__name__}: {str(exc)[:200]}"
    return None


class LeanAdapter(HTTPAdapter):
    """requests' HTTPAdapter without the per-request work this sink never needs.

    The sink sends every request to one or two URLs with the same settings, so the
    connection pool and the request path are looked up once instead of on every send (each
    lookup parses the URL and builds a 30-field pool key), and responses are built without
    cookie extraction (the events API sets no cookies). Its connections report to
    ``watchdog``, which bounds a whole request when armed (see deadline.py). Everything else,
    connection reuse, per-operation timeouts, TLS, proxies and the mapping of urllib3 errors
    to requests' exceptions, is HTTPAdapter's own code, except in ``post_kept_alive``.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pools: dict[tuple, Any] = {}
        self._paths: dict[tuple, str] = {}
        self._heads: dict[tuple, Any] = {}  # (request, pool) -> head halves, or None
        self.watchdog = Watchdog()

    # Public since requests 2.32.2, the floor: HTTPAdapter.send asks it for the pool.
    def get_connection_with_tls_context(
        self,
        request: PreparedRequest,
        verify: Any,
        proxies: dict[str, str] | None = None,
        cert: Any = None,
    ) -> Any:
        url = str(request.url)
        end = url.find("/", url.find("//") + 2)
        key = (
            url if end < 0 else url[:end],  # scheme://host:port
            verify,
            cert,
            tuple(sorted(proxies.items())) if proxies else (),
        )
        pool = self._pools.get(key)
        if pool is None or getattr(pool, "pool", True) is None:  # None: closed (evicted) pool
            pool = self._pools[key] = super().get_connection_with_tls_context(
                request, verify, proxies, cert
            )
            watch_pool(pool, self.watchdog)
        return pool

    def request_url(self, request: PreparedRequest, proxies: dict[str, str] | None) -> str:
        key = (request.url, tuple(sorted(proxies.items())) if proxies else ())
        path = self._paths.get(key)
        if path is None:
            path = self._paths[key] = super().request_url(request, proxies)
        return path

    def build_response(self, req: PreparedRequest, resp: Any) -> Response:
        response = Response()
        response.status_code = getattr(resp, "status", None)  # type: ignore[assignment]
        response.headers = CaseInsensitiveDict(getattr(resp, "headers", {}))
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = str(req.url)
        response.request = req
        response.connection = self
        return response

    def post_kept_alive(
        self,
        request: PreparedRequest,
        body: bytes,
        timeout: float | None,
        verify: Any,
        cert: Any,
        proxies: dict[str, str],
    ) -> Answer | None:
        """POST ``body`` with ``request``'s URL and headers on a connection the pool keeps
        alive; None, having sent nothing, when there is none (the caller then uses send()).

        Why: on a small board urllib3's per-request machinery (header-by-header writes,
        Timeout objects, its response object, requests' Response) costs more CPU than a
        10-event batch is worth. Connecting, TLS and its verification, proxy tunnels and the
        first request of each connection stay with send(); a request that needs a plain-HTTP
        proxy (an absolute request line and proxy headers) always goes through send(). This
        path writes the head send() would write, byte for byte, reads the answer as
        http.client would (keepalive.py), and raises the exceptions send() raises for the
        same failures (requests.ReadTimeout, SSLError, ConnectionError).
        """
        pool = self.get_connection_with_tls_context(request, verify, proxies, cert)
        key = (request, pool)  # by identity: the sink keeps one request per path and bucket
        head = self._heads.get(key, _UNSET)
        if head is _UNSET:
            if len(self._heads) >= _HEADS_MAX:  # a caller with a new request every time
                self._heads.clear()
            head = self._heads[key] = request_head(
                request, self.request_url(request, proxies), pool
            )
        if head is None:
            return None
        try:
            conn = pool._get_conn()
        except Urllib3Error:  # a closed pool: send() reports it as it always did
            return None
        if conn.sock is None:  # new or dropped: send() connects it, with its error mapping
            pool._put_conn(conn)
            return None
        try:
            return exchange(conn, head, body, timeout, self.watchdog)
        finally:
            pool._put_conn(conn)

    def close(self) -> None:
        self._pools.clear()
        self._heads.clear()
        self.watchdog.close()
        super().close()
