#!/usr/bin/env python3
"""Relay throughput, Redis Streams → a receiver: `isstreamer relay` beside a bare loop.

    python bench/relay_bench.py                 # 100,000 events in 4 buckets, best of 3
    python bench/relay_bench.py --events 20000 --repeat 1

It starts its own redis-server, fills the bucket streams once, and drains them again and
again with a fresh consumer group per run, to two receivers: the bench receiver (a minimal
events API in its own process, bench/receiver.py) and the local collector (`isstreamer serve`,
SQLite). Rows per receiver:
  bare loop    XREADGROUP COUNT 1000 + json.loads + json.dumps + requests.Session.post +
               XACK, one process: the least a relay must do
  relay x1     `isstreamer relay --once`, one process
  relay x2     two `isstreamer relay --once` sharing the group
Relay times are from launch to exit (all delivered and acknowledged) less the start-up and
exit of a relay with nothing to do, measured in the same run. Goal (issue 16): each relay
at least 80 % of the bare loop.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the redis-server helper
sys.path.insert(0, str(ROOT))

from redisserver import RedisServer  # noqa: E402

from bench.collector_bench import start_collector, stop_collector  # noqa: E402
from bench.receiver import Receiver  # noqa: E402
from isstreamer.sinks.base import Bucket  # noqa: E402
from isstreamer.sinks.redis import RedisSink  # noqa: E402

GOAL_RATIO = 0.8
KEY = "bench-relay-key"
BUCKETS = 4


def fill(url: str, events: int) -> None:
    """events readings spread over BUCKETS bucket streams, written through the sink."""
    sink = RedisSink(url)
    per_bucket = events // BUCKETS
    values = [21.5, 42, 0.25, 7]
    for b in range(BUCKETS):
        for start in range(0, per_bucket, 1000):
            batch = [
                (f"sensor{i % 10}", values[i % 4], 1_700_000_000.0 + i / 1000)
                for i in range(start, min(start + 1000, per_bucket))
            ]
            assert sink.send(Bucket(f"bench{b}", f"Bench {b}"), batch).ok
    sink.close()


def bare_loop(url: str, receiver_url: str, group: str) -> float:
    """Seconds to forward every entry with XREADGROUP + requests and acknowledge it."""
    import redis
    import requests

    client = redis.Redis.from_url(url, decode_responses=True, protocol=2)
    streams = [f"isstreamer:bench{b}" for b in range(BUCKETS)]
    for stream in streams:
        client.xgroup_create(stream, group, id="0")
    session = requests.Session()
    headers = {"Content-Type": "application/json", "X-IS-AccessKey": KEY, "Accept-Version": "~0"}
    started = time.perf_counter()
    while True:
        reply = client.xreadgroup(group, "bare", dict.fromkeys(streams, ">"), count=1000 // BUCKETS)
        if not reply:
            break
        for stream, entries in reply:
            body = json.dumps(
                [
                    {"key": f["key"], "value": json.loads(f["value"]), "epoch": float(f["epoch"])}
                    for _, f in entries
                ]
            )
            answer = session.post(
                f"{receiver_url}/api/events",
                data=body,
                headers=dict(headers, **{"X-IS-BucketKey": stream[11:]}),
            )
            answer.raise_for_status()
            client.xack(stream, group, *[i for i, _ in entries])
    elapsed = time.perf_counter() - started
    session.close()
    client.close()
    return elapsed


def relays(url: str, receiver_url: str, group: str, count: int, spool: Path) -> float:
    """Seconds from launching ``count`` `isstreamer relay --once` to the last one's exit."""
    env = dict(
        os.environ,
        ISSTREAMER_API_BASE=receiver_url,
        ISSTREAMER_ACCESS_KEY=KEY,
        ISSTREAMER_SPILL_DIR=str(spool),
        PYTHONPATH=str(ROOT),
    )
    cmd = [
        sys.executable,
        "-m",
        "isstreamer",
        "-q",
        "relay",
        "--from",
        url,
        "--group",
        group,
        "--once",
    ]
    started = time.perf_counter()
    procs = [
        subprocess.Popen(cmd + ["--consumer", f"r{i}"], env=env, stdin=subprocess.DEVNULL)
        for i in range(count)
    ]
    codes = [p.wait(600) for p in procs]
    elapsed = time.perf_counter() - started
    if codes != [0] * count:
        raise SystemExit(f"relay exited with {codes}")
    return elapsed


def best(repeat: int, run: Callable[[int], float]) -> float:
    return min(run(i) for i in range(repeat))


def measure(
    url: str, receiver_url: str, name: str, events: int, repeat: int, work: Path
) -> dict[str, Any]:
    """events/s of the bare loop, one relay and two relays against one receiver."""
    tag = f"{name}-{time.monotonic_ns()}"
    # A relay with nothing to read: start-up, discovery and exit, subtracted from relay rows.
    relays(url, receiver_url, f"{tag}-idle", 1, work / "idle")
    idle_s = min(relays(url, receiver_url, f"{tag}-idle", 1, work / "idle") for _ in range(3))
    bare_s = best(repeat, lambda i: bare_loop(url, receiver_url, f"{tag}-bare{i}"))
    # Start-up is measured apart and varies on a busy machine: never let subtracting it take
    # more than half of a run (a small run could otherwise come out at a negative rate).
    one_s = best(
        repeat, lambda i: relays(url, receiver_url, f"{tag}-one{i}", 1, work / f"{tag}-one{i}")
    )
    two_s = best(
        repeat, lambda i: relays(url, receiver_url, f"{tag}-two{i}", 2, work / f"{tag}-two{i}")
    )
    one_s, two_s = (max(raw - idle_s, raw / 2) for raw in (one_s, two_s))
    bare, one, two = events / bare_s, events / one_s, events / two_s
    return {
        "bare_loop_events_per_s": round(bare),
        "relay_x1_events_per_s": round(one),
        "relay_x2_events_per_s": round(two),
        "relay_x1_vs_bare": round(one / bare, 2),
        "relay_x2_per_relay_vs_bare": round(two / 2 / bare, 2),
        "relay_startup_s": round(idle_s, 2),
    }


def run(quick: bool = False) -> dict[str, Any]:
    """The figures for `python -m bench` (50,000 events, best of 1 with --quick)."""
    return run_sized(50_000, 1) if quick else run_sized(100_000, 2)


def run_sized(events: int = 100_000, repeat: int = 3) -> dict[str, Any]:
    """Both receivers, ``events`` events, best of ``repeat`` runs per row."""
    work = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    server = RedisServer(work / "redis").start()
    results: dict[str, Any] = {
        "events": events,
        "buckets": BUCKETS,
        "goal_ratio_per_relay": GOAL_RATIO,
    }
    try:
        fill(server.url, events)
        with Receiver() as receiver:
            results["bench_receiver"] = measure(
                server.url, receiver.url, "receiver", events, repeat, work
            )
        proc, collector_url = start_collector(work / "bench.db", KEY)
        try:
            results["collector"] = measure(
                server.url, collector_url, "collector", events, repeat, work
            )
        finally:
            stop_collector(proc)
    finally:
        server.kill()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs per row")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    results = run_sized(args.events, args.repeat)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"{results['events']:,} events in {BUCKETS} buckets, best of {args.repeat}; relay "
        f"start-up of {results['collector']['relay_startup_s']} s subtracted"
    )
    print(f"{'receiver':<16}{'row':<12}{'events/s':>12}{'vs bare':>9}")
    for receiver in ("bench_receiver", "collector"):
        r = results[receiver]
        bare = r["bare_loop_events_per_s"]
        for row, key in (
            ("bare loop", "bare_loop"),
            ("relay x1", "relay_x1"),
            ("relay x2", "relay_x2"),
        ):
            rate = r[f"{key}_events_per_s"]
            per_relay = rate / (2 if key == "relay_x2" else 1)
            ratio = "" if key == "bare_loop" else f"{per_relay / bare:>8.0%}"
            print(f"{receiver:<16}{row:<12}{rate:>12,}{ratio:>9}")
    print(f"goal: each relay >= {GOAL_RATIO:.0%} of the bare loop (relay x2: per relay)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
