"""Collector benchmark: ingest rate with batches of 1000, and the dashboard read at 1M rows.

    python bench/collector_bench.py           # full run (1M stored rows)
    python bench/collector_bench.py --quick   # smaller, for a smoke check

Goals (issue 7): ingest >= 50,000 events/s from one keep-alive client; the last 10,000 points
of one key at 1M stored rows in < 50 ms.

Measured on the 2-core development machine (Python 3.11, full run, client and server sharing
the two cores): ingest 147,000-207,000 events/s; last 10,000 points at 1M rows 10-11 ms through
the store, 32-34 ms through the read API including JSON encoding and the client's decoding.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from isstreamer.collector import Collector
from isstreamer.collector.store import Store

KEY = "bench-key"
BATCH = 1000


def _bodies(count: int, keys: int = 10) -> list[bytes]:
    """Pre-built request bodies, so the client's JSON encoding is not what gets measured."""
    now = time.time()
    bodies = []
    for b in range(count):
        events = [
            {
                "key": f"sensor_{i % keys}",
                "value": round(random.uniform(0, 100), 3),
                "epoch": now + b * BATCH + i,
            }
            for i in range(BATCH)
        ]
        bodies.append(json.dumps(events, separators=(",", ":")).encode())
    return bodies


def bench_ingest(db: Path, batches: int) -> dict[str, Any]:
    """Events/s posting ``batches`` batches of 1000 over one keep-alive requests.Session."""
    bodies = _bodies(batches)
    headers = {"Content-Type": "application/json", "X-IS-AccessKey": KEY, "X-IS-BucketKey": "bench"}
    with Collector(db, port=0, access_keys=[KEY]) as collector, requests.Session() as session:
        url = collector.url + "/api/events"
        session.post(
            url, data=bodies[0], headers=headers
        ).raise_for_status()  # warm up: bucket, series
        start = time.perf_counter()
        for body in bodies[1:]:
            response = session.post(url, data=body, headers=headers)
            if response.status_code != 204:
                raise RuntimeError(f"ingest failed: {response.status_code} {response.text}")
        elapsed = time.perf_counter() - start
    events = (batches - 1) * BATCH
    return {
        "ingest_events": events,
        "ingest_seconds": round(elapsed, 3),
        "ingest_events_per_s": round(events / elapsed),
    }


def bench_read(db: Path, rows: int, repeats: int = 20) -> dict[str, Any]:
    """Milliseconds to read the last 10,000 points of one key out of ``rows`` stored rows."""
    store = Store(db)
    now = time.time() - rows
    chunk = 100_000
    keys = 10
    # Straight through the store API: the same code path as ingest, without HTTP in the way.
    for start in range(0, rows, chunk):
        store.ingest(
            "bench-read",
            [
                (f"sensor_{i % keys}", (i % 1000) / 10, now + i)
                for i in range(start, min(rows, start + chunk))
            ],
            time.time(),
        )
    store.close()
    with Collector(db, port=0, access_keys=[KEY]) as collector, requests.Session() as session:
        url = f"{collector.url}/api/buckets/bench-read/events"
        params: dict[str, Any] = {"key": "sensor_3", "limit": 10_000}
        store_ms, http_ms = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            points = collector._store.events("bench-read", key="sensor_3", limit=10_000)  # type: ignore[union-attr]
            store_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            response = session.get(url, params=params)
            data = response.json()
            http_ms.append((time.perf_counter() - t0) * 1000)
        assert points is not None and len(points) == len(data) == 10_000
    return {
        "read_rows_stored": rows,
        "read_last_10k_store_ms": round(statistics.median(store_ms), 1),
        "read_last_10k_http_ms": round(statistics.median(http_ms), 1),
    }


def run(quick: bool) -> dict[str, Any]:
    """Run both measurements; ``quick`` uses 50 batches and 100k rows instead of 200 and 1M."""
    random.seed(1)
    with tempfile.TemporaryDirectory(prefix="collector-bench-") as tmp:
        result = {"quick": quick}
        result.update(bench_ingest(Path(tmp) / "ingest.db", 50 if quick else 200))
        result.update(bench_read(Path(tmp) / "read.db", 100_000 if quick else 1_000_000))
    result["ingest_goal_met"] = result["ingest_events_per_s"] >= 50_000
    result["read_goal_met"] = result["read_last_10k_http_ms"] < 50
    return result


if __name__ == "__main__":
    figures = run(quick="--quick" in sys.argv[1:])
    for name, value in figures.items():
        print(f"{name:28} {value}")
