"""ApiServer: the Initial State events API on 127.0.0.1, recording everything, failing on
command. Its handler threads are in isstreamer.testing.handler."""

from __future__ import annotations

import itertools
import selectors
import socket
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

from .handler import EVENTS_PATH, Request, _Behaviour, _HTTPServer

DEFAULT_ACCESS_KEY = "test-access-key"  # the key ApiServer() accepts unless told otherwise


class ApiServer:
    """The Initial State events API on 127.0.0.1, recording everything, failing on command."""

    def __init__(
        self,
        access_keys: Iterable[str] | None = (DEFAULT_ACCESS_KEY,),
        max_body: int = 1_000_000,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.access_keys = None if access_keys is None else set(access_keys)  # None: any key
        self.max_body = max_body
        self.host = host
        self.port = port
        self.requests: list[Request] = []
        self.events: list[dict] = []
        self.buckets: dict[str, str] = {}
        self._cond = threading.Condition()  # guards everything below and the lists above
        self._behaviours: dict[str, deque[_Behaviour]] = {}
        self._release = threading.Event()  # set (and replaced) to release hangs and delays
        self._conns: dict[socket.socket, int] = {}  # open connections -> connection id
        self._conn_ids = itertools.count(1)
        self._running: tuple[_HTTPServer, threading.Thread, socket.socket] | None = None
        self._poison: dict[Any, int] = {}  # event value -> status for any batch holding it

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ApiServer:
        """Listen (on the same port as before after a stop()) and serve in daemon threads."""
        if self._running:
            return self
        httpd = _HTTPServer(self, (self.host, self.port))
        self.port = httpd.server_address[1]
        wake_r, wake_w = socket.socketpair()
        thread = threading.Thread(
            target=self._serve, args=(httpd, wake_r), daemon=True, name=f"ApiServer:{self.port}"
        )
        self._running = (httpd, thread, wake_w)
        thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every open connection; hung requests are released."""
        if not self._running:
            return
        httpd, thread, wake_w = self._running
        self._running = None
        wake_w.send(b"\0")  # wakes the accept loop without a polling interval
        thread.join()
        wake_w.close()
        httpd.server_close()  # from now on connecting is refused
        self._release_all()
        with self._cond:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes a handler blocked reading; close is theirs
            except OSError:
                pass
        with self._cond:  # handlers end promptly once their sockets are shut down
            self._cond.wait_for(lambda: not self._conns, timeout=5)

    def fail(
        self,
        status: int,
        times: int | None = 1,
        headers: dict | None = None,
        body: str | bytes | dict | None = None,
        path: str = EVENTS_PATH,
    ) -> None:
        """Answer the next ``times`` requests to ``path`` with ``status`` (None: until clear())."""
        self._queue(path, _Behaviour("fail", times, status, headers, body))

    def hang(self, times: int | None = 1, path: str = EVENTS_PATH) -> None:
        """Read the next requests, then never answer until clear() or stop()."""
        self._queue(path, _Behaviour("hang", times))

    def reset(self, times: int | None = 1, path: str = EVENTS_PATH) -> None:
        """Read the next requests, then abort their TCP connection (RST) without an answer."""
        self._queue(path, _Behaviour("reset", times))

    def delay(self, seconds: float, times: int | None = 1, path: str = EVENTS_PATH) -> None:
        """Wait ``seconds`` before answering the next requests normally."""
        self._queue(path, _Behaviour("delay", times, seconds=seconds))

    def drip(self, interval_s: float, times: int | None = 1, path: str = EVENTS_PATH) -> None:
        """Answer the next requests normally, but one byte (status line, headers, body) per
        ``interval_s`` seconds: every socket read of the client succeeds, the answer takes long."""
        self._queue(path, _Behaviour("drip", times, seconds=interval_s))

    def trickle(self, interval_s: float, times: int | None = 1, path: str = EVENTS_PATH) -> None:
        """Read the body of the next requests 1 KiB per ``interval_s`` seconds, then answer."""
        self._queue(path, _Behaviour("trickle", times, seconds=interval_s))

    def poison(self, value: Any, status: int = 500) -> None:
        """Answer ``status`` to every batch holding an event with this value, until clear()."""
        with self._cond:
            self._poison[value] = status

    def poisoned(self, events: list[dict]) -> int | None:
        """The status to answer for a batch holding a poisoned value, else None."""
        with self._cond:
            if not self._poison:
                return None
            for event in events:
                value = event.get("value")
                if isinstance(value, (str, int, float)) and value in self._poison:
                    return self._poison[value]
        return None

    def clear(self) -> None:
        """Drop queued behaviours and release hung requests (their connections close)."""
        with self._cond:
            self._behaviours.clear()
            self._poison.clear()
        self._release_all()

    def events_for(self, bucket_key: str) -> list[dict]:
        with self._cond:
            return [e for e in self.events if e["bucket"] == bucket_key]

    def wait_for_events(self, n: int, timeout: float = 10.0) -> bool:
        """Wait until at least ``n`` events were accepted."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.events) >= n, timeout)

    def wait_for_requests(self, n: int, timeout: float = 10.0, path: str | None = None) -> bool:
        """Wait until at least ``n`` requests (to ``path``, if given) were received."""

        def enough() -> bool:
            return sum(1 for r in self.requests if path in (None, r.path)) >= n

        with self._cond:
            return self._cond.wait_for(enough, timeout)

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- used by the handler threads --------------------------------------------------------
    def _serve(self, httpd: _HTTPServer, wake: socket.socket) -> None:
        with selectors.DefaultSelector() as selector, wake:
            selector.register(httpd.socket, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while True:
                if any(key.fileobj is wake for key, _ in selector.select()):
                    return  # stop()
                try:
                    request, address = httpd.get_request()
                except OSError:
                    continue
                httpd.process_request(request, address)

    def _queue(self, path: str, behaviour: _Behaviour) -> None:
        if behaviour.times is None or behaviour.times > 0:
            with self._cond:
                self._behaviours.setdefault(path, deque()).append(behaviour)

    def _next_behaviour(self, path: str) -> tuple[_Behaviour | None, threading.Event]:
        with self._cond:
            queue = self._behaviours.get(path)
            if not queue:
                return None, self._release
            behaviour = queue[0]
            if behaviour.times is not None:
                behaviour.times -= 1
                if behaviour.times == 0:
                    queue.popleft()
            return behaviour, self._release

    def _release_all(self) -> None:
        with self._cond:
            self._release.set()
            self._release = threading.Event()

    def _record(self, request: Request, events: list[dict]) -> None:
        with self._cond:
            self.requests.append(request)
            self.events.extend(events)
            self._cond.notify_all()
