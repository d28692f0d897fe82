"""The embedded default: find or start the collector that keyless commands stream to."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time

from .keys import default_db_path, key_file_path, read_key
from .routes import SERVICE
from .server import Collector

log = logging.getLogger("isstreamer.collector")

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


def ensure_local_collector(host: str = "127.0.0.1", port: int = 8080) -> tuple[str, str]:
    """Return (api base URL, access key) of a collector at host:port, starting one if none answers.

    A collector already there is reused with the key stored beside the default database;
    otherwise one starts in this process (daemon thread) on the default database.
    """
    base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    with _lock:
        mine = _started.get((host, port))
        if mine is not None:
            return mine.url, mine.access_keys[0]
        found = _reuse(host, port, base)
        if found:
            return found
        collector = Collector(default_db_path(), host=host, port=port)
        try:
            collector.start()
        except OSError:
            # Lost a race with another process starting its collector: wait for it to answer.
            deadline = time.monotonic() + RACE_WAIT_S
            while time.monotonic() < deadline:
                found = _reuse(host, port, base)
                if found:
                    return found
                time.sleep(0.1)
            raise
        _started[(host, port)] = collector
        return collector.url, collector.access_keys[0]
