"""The clients under test, behind one small interface, and process-level measurements.

``isstreamer`` is this project's Streamer, ``ISStreamer`` the original 2.0.0 client, and
``requests`` / ``http.client`` the bare baselines that post pre-built batches.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable

BUCKET = "bench"
ACCESS_KEY = "bench-access-key"
KEY = "temperature"
LEGACY_THREAD_LIMIT = 2000  # ISStreamer starts a thread per batch; stay far below pid_max

IMPLS = ("isstreamer", "ISStreamer")
# Bare clients over one keep-alive connection. "requests" and "http.client" post bodies
# encoded before the timing starts (the ceiling of the goals); "requests+json" encodes each
# batch with json.dumps inside the timing, as any client has to.
BASELINES = ("requests", "requests+json", "http.client")


def legacy_available() -> tuple[bool, str]:
    """Whether ISStreamer 2.0.0 can be imported here, and its version (or why not)."""
    try:
        from ISStreamer import version
    except ImportError as exc:
        return False, f"not importable ({exc}); pip install ISStreamer==2.0.0"
    return True, str(version.__version__)


def _guard_legacy_threads() -> None:
    # ISStreamer has no bound on its ship threads. A run that outpaces the receiver could
    # start tens of thousands and exhaust the pids of a shared machine: stop the run instead.
    start = threading.Thread.start

    def guarded(self: threading.Thread) -> None:
        if threading.active_count() > LEGACY_THREAD_LIMIT:
            print(
                "RESULT "
                + json.dumps(
                    {"error": f"ISStreamer exceeded {LEGACY_THREAD_LIMIT} threads; stopped"}
                ),
                flush=True,
            )
            os._exit(3)
        start(self)

    threading.Thread.start = guarded  # type: ignore[method-assign]


def make_client(
    impl: str, url: str, buffer_size: int, workdir: Path, **options: Any
) -> tuple[Any, Callable[[], Any]]:
    """A streamer for ``impl`` and its flush function (which waits for delivery where it can)."""
    if impl == "isstreamer":
        from isstreamer import Streamer

        options.setdefault("spill_dir", str(workdir / "spool"))
        streamer = Streamer(
            bucket_name=BUCKET,
            bucket_key=BUCKET,
            access_key=ACCESS_KEY,
            api_base=url,
            buffer_size=buffer_size,
            **options,
        )
        return streamer, lambda: streamer.flush(600)
    if impl == "ISStreamer":
        _guard_legacy_threads()
        # ISStreamer reads stream_api_base only from an ini file, and only when the
        # client_config section exists too.
        ini = workdir / "legacy.ini"
        ini.write_text(
            f"[isstreamer.client_config]\naccess_key = {ACCESS_KEY}\n"
            f"[isstreamer.api_config]\nstream_api_base = {url}\n"
        )
        from ISStreamer.Streamer import Streamer as LegacyStreamer

        legacy = LegacyStreamer(
            bucket_name=BUCKET,
            bucket_key=BUCKET,
            access_key=ACCESS_KEY,
            ini_file_location=str(ini),
            buffer_size=buffer_size,
        )
        return legacy, legacy.flush
    raise ValueError(f"unknown client {impl!r}")


def headers() -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Accept-Version": "~0",
        "X-IS-AccessKey": ACCESS_KEY,
        "X-IS-BucketKey": BUCKET,
    }


def prebuilt_bodies(events: int, batch: int) -> list[bytes]:
    """Request bodies shaped like the clients' own, encoded before any timing starts."""
    now = time.time()
    return [
        json.dumps(
            [{"key": KEY, "value": float(i + j), "epoch": now} for j in range(batch)],
            separators=(",", ":"),
        ).encode()
        for i in range(0, events, batch)
    ]


def baseline_poster(impl: str, url: str) -> tuple[Callable[[bytes], None], Callable[[], None]]:
    """post(body) over one keep-alive connection with a bare client, and close()."""
    target = url + "/api/events"
    if impl in ("requests", "requests+json"):
        import requests

        session = requests.Session()
        hdrs = headers()

        def post(body: bytes) -> None:
            session.post(target, data=body, headers=hdrs)

        session.post(
            url + "/api/buckets", json={"bucketKey": BUCKET, "bucketName": BUCKET}, headers=hdrs
        )
        return post, session.close
    if impl == "http.client":
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        hdrs = headers()

        def post_raw(body: bytes) -> None:
            conn.request("POST", "/api/events", body, hdrs)
            conn.getresponse().read()

        return post_raw, conn.close
    raise ValueError(f"unknown baseline {impl!r}")


def cpu_seconds() -> float:
    """User + system CPU of the whole process, every thread included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def voluntary_switches() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw


def rss_bytes() -> int:
    """Resident set size now (from /proc; Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def free_port() -> int:
    """A port nothing listens on (for a receiver that is down, to be started later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    n = len(ordered)

    def rank(q: float) -> float:
        return ordered[min(n - 1, int(q * n))]

    return {
        "median_ns": round(rank(0.5), 1),
        "p99_ns": round(rank(0.99), 1),
        "p999_ns": round(rank(0.999), 1),
        "mean_ns": round(sum(ordered) / n, 1),
        "max_ns": round(ordered[-1], 1),
        "samples": n,
    }
