"""Collector benchmark: ingest with batches of 1000, and the read side on a week of data.

    python bench/collector_bench.py           # full run (a week of 10-s data for 30 keys)
    python bench/collector_bench.py --quick   # one day instead, for a smoke check

Goals (issue 15):
- ingest >= 150,000 events/s with batches of 1000 from one keep-alive client (http.client;
  printed beside the figure with requests.Session and the same run's SQLite floor: the bare
  inserts of the same rows);
- a week of 10-second data for 30 keys (1.8 M rows): the one-key week series < 50 ms from
  the store and < 100 ms over HTTP; the whole-bucket series in one request < 300 ms;
- the bucket page of that bucket, every chart drawn, in headless Chromium < 1.5 s;
- a /metrics scrape of 10,000 keys < 200 ms.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import requests

from isstreamer.collector import Collector
from isstreamer.collector.checkpoint import BACKSTOP_PAGES
from isstreamer.collector.schema import migrate
from isstreamer.collector.store import Store, insert_events

KEY = "bench-key"
BATCH = 1000
INGEST_ROUNDS = 5
STEP_S = 10
KEYS = 30
POINTS = 600  # what one chart asks for: about one point per pixel of its width
METRICS_KEYS = 10_000
ROOT = Path(__file__).resolve().parent.parent


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


def start_collector(db: Path, access_key: str) -> tuple[subprocess.Popen[str], str]:
    """`python -m isstreamer.collector` (what `isstreamer serve` runs) on a free port with
    the database ``db``: (process, base URL), once it listens (it says so on its first line)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "isstreamer.collector", "--port", "0", "--db", str(db)]
        + ["--access-key", access_key],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert server.stdout is not None
    first = server.stdout.readline()  # "isstreamer collector listening on http://…"
    if "listening on " not in first:
        stop_collector(server)
        raise RuntimeError(f"collector did not start: {first!r}")
    return server, first.rsplit(" ", 1)[1].strip()


def stop_collector(server: subprocess.Popen[str]) -> None:
    """SIGTERM, then wait for it to finish its requests and close its database."""
    server.send_signal(signal.SIGTERM)
    server.communicate(timeout=30)


class _KeepAliveClient:
    """The lightest keep-alive client: http.client on one connection. It costs about 0.17 ms
    of CPU per 1000-event post where requests.Session costs 0.8 ms (measured against
    bench/receiver.py); the client's own work is not the collector's."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.path = parts.path
        self.connection = http.client.HTTPConnection(parts.hostname or "", parts.port)

    def post(self, body: bytes, headers: dict[str, str]) -> None:
        self.connection.request("POST", self.path, body, headers)
        response = self.connection.getresponse()
        answer = response.read()
        if response.status != 204:
            raise RuntimeError(f"ingest: {response.status} {answer[:200]!r}")

    def close(self) -> None:
        self.connection.close()


class _RequestsClient:
    """requests.Session, as the agent itself posts."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def post(self, body: bytes, headers: dict[str, str]) -> None:
        response = self.session.post(self.url, data=body, headers=headers)
        if response.status_code != 204:
            raise RuntimeError(f"ingest: {response.status_code} {response.text[:200]}")

    def close(self) -> None:
        self.session.close()


def bench_ingest(
    db: Path, batches: int, rounds: int = INGEST_ROUNDS, client: str = "http.client"
) -> list[float]:
    """Events/s of each of ``rounds`` rounds posting batches of 1000 over one keep-alive
    connection to a collector in a process of its own, as `isstreamer serve` runs it, into
    one growing database. ``client``: "http.client" or "requests"."""
    bodies = _bodies(batches)
    headers = {"Content-Type": "application/json", "X-IS-AccessKey": KEY, "X-IS-BucketKey": "bench"}
    server, base = start_collector(db, KEY)
    try:
        url = base + "/api/events"
        poster = _KeepAliveClient(url) if client == "http.client" else _RequestsClient(url)
        try:
            poster.post(bodies[0], headers)  # the bucket and its series exist before the clock
            per_round = (batches - 1) // rounds
            rates = []
            for r in range(rounds):
                start = time.perf_counter()
                for body in bodies[1 + r * per_round : 1 + (r + 1) * per_round]:
                    poster.post(body, headers)
                rates.append(per_round * BATCH / (time.perf_counter() - start))
        finally:
            poster.close()
    finally:
        stop_collector(server)
    return rates


def ingest_figures(tmp: Path, batches: int) -> dict[str, Any]:
    """The ingest figures: the median round's events/s (a shared machine's speed drifts from
    one second to the next) with the lean client, then with requests.Session, then the
    SQLite floor of the same rows."""
    lean = bench_ingest(tmp / "ingest.db", batches)
    with_requests = bench_ingest(tmp / "ingest-requests.db", batches, client="requests")
    result: dict[str, Any] = {
        "ingest_events": len(lean) * ((batches - 1) // len(lean)) * BATCH,
        "ingest_rounds_events_per_s": [round(rate) for rate in lean],
        "ingest_events_per_s": round(statistics.median(lean)),
        "ingest_requests_client_events_per_s": round(statistics.median(with_requests)),
    }
    result.update(bench_sqlite_floor(tmp / "floor.db", batches - 1))
    result["ingest_to_floor"] = round(
        result["ingest_events_per_s"] / result["sqlite_floor_events_per_s"], 2
    )
    return result


def bench_sqlite_floor(db: Path, batches: int) -> dict[str, Any]:
    """The storage floor, measured beside the ingest: the same events as rows of the same
    ``events`` table (same index, the store's pragmas, its multi-row INSERTs), one
    transaction per batch of 1000; no HTTP, JSON, validation, rollups or checkpoint thread.
    It follows the machine's speed of the moment, so ingest / floor says how much the rest of
    the ingest path costs beside SQLite's own work, whatever that speed."""
    now = time.time()
    batches_values = []
    for b in range(batches):
        rows = sorted(  # grouped by series, as Store.ingest writes them
            ((1 + i % 10, now + b * BATCH + i, 0, random.uniform(0, 100)) for i in range(BATCH)),
            key=lambda row: row[0],
        )
        batches_values.append([column for row in rows for column in row])
    connection = sqlite3.connect(db, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        migrate(connection)
        start = time.perf_counter()
        for values in batches_values:
            connection.execute("BEGIN IMMEDIATE")
            insert_events(connection, values)
            connection.execute("COMMIT")
        elapsed = time.perf_counter() - start
    finally:
        connection.close()
    return {"sqlite_floor_events_per_s": round(batches * BATCH / elapsed)}


def key_names() -> list[str]:
    """Thirty keys named as `isstreamer metrics` names them (units in the suffixes)."""
    names = ["cpu_total", "mem_percent", "mem_used_mib", "swap_percent", "uptime_s", "load_1m"]
    names += [f"cpu_{i}" for i in range(4)] + [f"temp_cpu_{i}" for i in range(2)]
    names += [f"disk_{d}_percent" for d in ("root", "boot", "data")]
    names += [f"disk_{d}_free_gib" for d in ("root", "boot", "data")]
    names += ["disk_read_kib_per_s", "disk_write_kib_per_s", "disk_reads_per_s"]
    names += [f"net_{n}_{d}_kib_per_s" for n in ("eth0", "wlan0") for d in ("recv", "sent")]
    names += [
        "process_count",
        "swap_used_mib",
        "mem_available_mib",
        "disk_writes_per_s",
        "temp_gpu",
    ]
    return names[:KEYS]


def seed_week(db: Path, days: float) -> tuple[float, float, int]:
    """``days`` of 10-second data for 30 keys, through the store's ingest; (since, until, rows)."""
    store = Store(db)
    names = key_names()
    until = time.time() // STEP_S * STEP_S
    samples = int(days * 86400 // STEP_S)
    since = until - samples * STEP_S
    rng = random.Random(3)
    rows: list[tuple[str, Any, float]] = []
    for i in range(samples):
        t = since + i * STEP_S
        wave = 50 + 30 * ((i % 8640) / 8640)
        rows += [(name, round(wave + rng.random() * 10 + k, 2), t) for k, name in enumerate(names)]
        if len(rows) >= 10_000:
            store.ingest("week", rows, until)
            rows = []
    if rows:
        store.ingest("week", rows, until)
    store.ingest("many", [(f"sensor_{i:05d}", i * 0.5, until) for i in range(METRICS_KEYS)], until)
    store.close()
    return since, until, samples * len(names)


def _median_ms(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1)


def bench_read(db: Path, days: float, repeats: int = 15) -> dict[str, Any]:
    """Milliseconds for the series of one key and of the whole bucket over the stored range,
    from the store and over HTTP (JSON encoded and decoded), and for a /metrics scrape."""
    t0 = time.perf_counter()
    since, until, rows = seed_week(db, days)
    seeded_s = time.perf_counter() - t0
    one = {"key": "cpu_total", "since": since, "until": until, "points": POINTS}
    whole = {"since": since, "until": until, "points": POINTS}
    with Collector(db, port=0, access_keys=[KEY]) as collector, requests.Session() as session:
        store = collector._store
        assert store is not None
        url = f"{collector.url}/api/buckets/week/series"
        answer = session.get(url, params=one).json()
        assert answer["rows"] and answer["since"] == since
        store_ms = _median_ms(
            lambda: store.series("week", ["cpu_total"], since, until, POINTS, until), repeats
        )
        http_ms = _median_ms(lambda: session.get(url, params=one).json(), repeats)
        bucket_ms = _median_ms(lambda: session.get(url, params=whole).json(), repeats)
        size = len(session.get(url, params=whole).content)
        metrics_ms = _median_ms(lambda: session.get(collector.url + "/metrics").text, repeats)
        page_ms = bench_page(collector.url)
    return {
        "read_rows_stored": rows,
        "read_seed_events_per_s": round(rows / seeded_s),
        "series_points": len(answer["rows"]),
        "series_step_s": answer["step"],
        "series_one_key_store_ms": store_ms,
        "series_one_key_http_ms": http_ms,
        "series_whole_bucket_http_ms": bucket_ms,
        "series_whole_bucket_bytes": size,
        "metrics_10k_keys_ms": metrics_ms,
        "page_all_charts_drawn_ms": page_ms,
    }


def bench_page(url: str, runs: int = 3) -> float | None:
    """Milliseconds from navigation to every chart drawn (the page's own performance.now()),
    median of ``runs`` fresh tabs; None without Chromium. The window is tall enough to show
    all 30 charts, so none is skipped for being off screen."""
    sys.path.insert(0, str(ROOT / "tests"))  # the tests' DevTools driver, no dependency
    from chromium import CHROMIUM, Browser

    if not os.access(CHROMIUM, os.X_OK):
        return None
    times = []
    with tempfile.TemporaryDirectory() as profile, Browser(Path(profile)) as browser:
        for _ in range(runs + 1):  # the first run warms the browser's caches: not counted
            page = browser.open(f"{url}/buckets/week?range=7d", width=1280, height=9000)
            page.wait_for("document.body.dataset.ready === '1'", timeout_s=60)
            drawn = page.evaluate("Number(document.body.dataset.drawn)")
            assert drawn >= KEYS, drawn
            times.append(page.evaluate("window.issReadyMs"))
            page.send("Page.close")
    return round(statistics.median(times[1:]), 1)


def run(quick: bool) -> dict[str, Any]:
    """Run the measurements; ``quick`` posts 50 batches and reads a day instead of 500 and a
    week."""
    random.seed(1)
    with tempfile.TemporaryDirectory(prefix="collector-bench-") as tmp:
        result: dict[str, Any] = {"quick": quick}
        result.update(ingest_figures(Path(tmp), 51 if quick else 501))
        result.update(bench_read(Path(tmp) / "read.db", 1 if quick else 7))
    result["ingest_goal_met"] = result["ingest_events_per_s"] >= 150_000
    result["series_goal_met"] = (
        result["series_one_key_store_ms"] < 50
        and result["series_one_key_http_ms"] < 100
        and result["series_whole_bucket_http_ms"] < 300
    )
    result["metrics_goal_met"] = result["metrics_10k_keys_ms"] < 200
    page = result["page_all_charts_drawn_ms"]
    result["page_goal_met"] = None if page is None else page < 1500
    return result


if __name__ == "__main__":
    figures = run(quick="--quick" in sys.argv[1:])
    for name, value in figures.items():
        print(f"{name:30} {value}")
