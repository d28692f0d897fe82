"""The collector: its HTTP server on the SQLite store in a daemon thread, plus the retention
timer; start() and stop() for the command line and the embedded default."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .auth import loopback_address
from .http import CollectorHTTPServer
from .keys import key_file_path, load_or_create_key
from .store import Store
from .wire import Limits

log = logging.getLogger("isstreamer.collector")

RETENTION_INTERVAL_S = 3600.0
DRAIN_TIMEOUT_S = 5.0


def _poke(server: CollectorHTTPServer) -> None:
    host, port = str(server.server_address[0]), int(server.server_address[1])
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    try:
        socket.create_connection((host, port), timeout=0.2).close()
    except OSError:
        pass


class Collector:
    """An Initial State-compatible collector serving from a daemon thread."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 8080,
        access_keys: Iterable[str] | None = None,
        retention_days: float | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.limits = limits or Limits()
        self.host = host
        self.port = port
        self.retention_days = retention_days
        self.retention_interval_s = RETENTION_INTERVAL_S
        self.access_keys: list[str] = [k for k in (access_keys or ()) if k]
        self.generated_key: str | None = None  # set when this start created the key file
        self.key_file: Path | None = None
        if not self.access_keys:
            self.key_file = key_file_path(self.db_path)
            key, created = load_or_create_key(self.key_file)
            self.access_keys = [key]
            self.generated_key = key if created else None
        self._server: CollectorHTTPServer | None = None
        self._store: Store | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        """Base URL of the API and dashboard, with the real port once started."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def reads_open(self) -> bool:
        """True when reads need no key (bound to a loopback address)."""
        return self._server.reads_open if self._server else loopback_address(self.host)

    def start(self) -> Collector:
        """Open the store, bind, serve in a daemon thread; OSError if the port is taken."""
        if self._server is not None:
            return self
        store = Store(self.db_path)
        try:
            server = CollectorHTTPServer(self.host, self.port, store, self.access_keys, self.limits)
        except BaseException:
            store.close()
            raise
        self._store, self._server = store, server
        self.port = server.server_address[1]
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=server.serve_forever, name="isstreamer-collector", daemon=True)
        ]
        if self.retention_days:
            self._threads.append(
                threading.Thread(
                    target=self._retention_loop, name="isstreamer-retention", daemon=True
                )
            )
        for thread in self._threads:
            thread.start()
        log.info("collector serving %s from %s", self.url, self.db_path)
        return self

    def purge(self) -> int:
        """Apply the retention setting now; returns the number of events deleted."""
        if self._store is None or not self.retention_days:
            return 0
        deleted = self._store.purge(
            time.time() - self.retention_days * 86400, self._stopping.is_set
        )
        if deleted:
            log.info(
                "retention: deleted %d events older than %g days", deleted, self.retention_days
            )
        return deleted

    def _retention_loop(self) -> None:
        # At start, then every interval; Event.wait sleeps without polling and wakes at stop().
        while not self._stopping.is_set():
            try:
                self.purge()
            except Exception:
                log.exception("retention run failed")
            self._stopping.wait(self.retention_interval_s)

    def stop(self, timeout: float = DRAIN_TIMEOUT_S) -> None:
        """Stop accepting, finish running requests (up to ``timeout``), close the store."""
        server, store = self._server, self._store
        if server is None or store is None:
            return
        self._stopping.set()
        # serve_forever notices shutdown() only between select() calls (every 0.5 s); a
        # connection of our own wakes it at once, so stop() and SIGTERM take milliseconds.
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        while stopper.is_alive():
            _poke(server)
            stopper.join(0.05)
        server.server_close()
        server.drain(timeout)
        for thread in self._threads:
            thread.join(timeout)
        store.close()
        self._server = self._store = None
        log.info("collector stopped")

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
