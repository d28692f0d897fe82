"""The embedded default: find or start the collector that keyless commands stream to."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from typing import NamedTuple

from .keys import default_db_path, key_file_path, read_key
from .routes import SERVICE
from .server import Collector

log = logging.getLogger("isstreamer.collector")

DEFAULT_PORT = 8080
PROBE_TIMEOUT_S = 2.0
# Another process may be binding the same port right now; give it this long to answer.
RACE_WAIT_S = 5.0

_started: dict[tuple[str, int], Collector] = {}
_lock = threading.Lock()


def _probe(host: str, port: int, key: str) -> dict | None:
    """The health answer of a collector at host:port, None if nothing listens; raises otherwise."""
    conn = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT_S)
    try:
        conn.request("GET", "/api/health", headers={"X-IS-AccessKey": key} if key else {})
        response = conn.getresponse()
        body = response.read()
    except ConnectionRefusedError:
        return None
    except (OSError, http.client.HTTPException) as exc:
        raise RuntimeError(
            f"something at {host}:{port} answers, but not as an isstreamer collector"
        ) from exc
    finally:
        conn.close()
    try:
        health = json.loads(body)
    except ValueError:
        health = None
    if response.status != 200 or not isinstance(health, dict) or health.get("service") != SERVICE:
        raise RuntimeError(
            f"something at {host}:{port} answers, but not as an isstreamer collector"
        )
    return health


def _reuse(host: str, port: int, base: str) -> tuple[str, str] | None:
    key_file = key_file_path(default_db_path())
    key = read_key(key_file)
    health = _probe(host, port, key)
    if health is None:
        return None
    if not key or health.get("keyAccepted") is not True:
        raise RuntimeError(
            f"the collector at {base} does not accept the key in {key_file}; "
            "stop it or configure its access key"
        )
    log.info("reusing the collector at %s", base)
    return base, key


class LocalCollector(NamedTuple):
    """Where the embedded default is: its URL, its key, and whether this process serves it
    (then it stops listening when the process exits)."""

    url: str
    access_key: str
    in_process: bool


def local_collector(
    host: str = "127.0.0.1", port: int = DEFAULT_PORT, fallback: bool = False
) -> LocalCollector:
    """The collector at host:port, or one started in this process on the default database.

    A collector already there is reused with the key stored beside the default database.
    With ``fallback``, something else on the port (not an isstreamer collector) makes this
    start one on a free port instead of raising RuntimeError; the URL says which.
    """
    base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    asked = (host, port)  # a collector started on a free port instead is kept under this too
    with _lock:
        mine = _started.get(asked)
        if mine is not None:
            return LocalCollector(mine.url, mine.access_keys[0], True)
        try:
            found = _reuse(host, port, base)
        except RuntimeError as exc:
            if not fallback or "not as an isstreamer collector" not in str(exc):
                raise
            log.warning("%s; starting the local collector on a free port instead", exc)
            found, port = None, 0
        if found:
            return LocalCollector(*found, False)
        collector = Collector(default_db_path(), host=host, port=port)
        try:
            collector.start()
        except OSError:
            # Lost a race with another process starting its collector: wait for it to answer.
            deadline = time.monotonic() + RACE_WAIT_S
            while time.monotonic() < deadline:
                found = _reuse(host, port, base)
                if found:
                    return LocalCollector(*found, False)
                time.sleep(0.1)
            raise
        _started[asked] = collector
        return LocalCollector(collector.url, collector.access_keys[0], True)


def ensure_local_collector(host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> tuple[str, str]:
    """(api base URL, access key) of a collector at host:port, starting one if none answers."""
    found = local_collector(host, port)
    return found.url, found.access_key
