#!/usr/bin/env python3
"""Events/s into Redis Streams: RedisSink.send() alone, and end to end through the Streamer.

    python bench/redis_bench.py                      # starts its own redis-server
    python bench/redis_bench.py --url redis://127.0.0.1:6379/0 --events 500000
    python bench/redis_bench.py --cluster            # also a 3-node Redis Cluster of its own

Rows:
  redis-py pipeline   pipeline(transaction=False) + xadd() per event: the plain way, for scale
  sink.send           RedisSink.send() with pre-built batches (the sink's own cost + redis)
  Streamer            Streamer(api_base=url, buffer_size=batch).log() for every event, then
                      flush(): logging, batching, the worker thread and the sink together
  cluster sink.send   (--cluster) RedisClusterSink.send(), batches spread over 12 buckets, so
                      over the three nodes of a local cluster
Goal (issue 8): >= 100,000 events/s at batches of 1000 against a local redis-server.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import isstreamer
from isstreamer.sinks.base import Bucket
from isstreamer.sinks.redis import RedisSink

GOAL = 100_000
TESTS = Path(__file__).resolve().parent.parent / "tests"  # for the redis-server helper


def make_events(n: int) -> list[tuple]:
    values = [21.5, True, "on", 42]
    return [(f"sensor{i % 10}", values[i % 4], 1_700_000_000.0 + i / 1000) for i in range(n)]


def run_pipeline(url: str, batches: list[list[tuple]]) -> float:
    import redis

    client = redis.Redis.from_url(url)
    stream = "bench:pipeline"
    client.delete(stream)
    started = time.perf_counter()
    for batch in batches:
        pipe = client.pipeline(transaction=False)
        for key, value, epoch in batch:
            pipe.xadd(stream, {"key": key, "value": json.dumps(value), "epoch": repr(epoch)})
        pipe.execute()
    elapsed = time.perf_counter() - started
    client.delete(stream)
    client.close()
    return elapsed


def run_sink(url: str, batches: list[list[tuple]]) -> float:
    sink = RedisSink(url, prefix="bench:")
    bucket = Bucket("sink", "bench")
    sink.send(bucket, batches[0][:1])  # connect and register outside the timing
    started = time.perf_counter()
    for batch in batches:
        result = sink.send(bucket, batch)
        if not result.ok:
            raise SystemExit(f"send failed: {result}")
    elapsed = time.perf_counter() - started
    sink.close()
    return elapsed


def run_cluster_sink(url: str, batches: list[list[tuple]], buckets: int = 12) -> float:
    from isstreamer.sinks.redis_cluster import RedisClusterSink

    sink = RedisClusterSink(url, prefix="bench:")
    for b in range(buckets):  # slot map, connections and registry outside the timing
        sink.send(Bucket(f"cluster{b}"), batches[0][:1])
    started = time.perf_counter()
    for i, batch in enumerate(batches):
        result = sink.send(Bucket(f"cluster{i % buckets}"), batch)
        if not result.ok:
            raise SystemExit(f"send failed: {result}")
    elapsed = time.perf_counter() - started
    sink.close()
    return elapsed


def run_streamer(url: str, events: list[tuple], batch: int) -> float | None:
    if not hasattr(isstreamer, "Streamer"):
        return None
    with tempfile.TemporaryDirectory() as spill:
        streamer = isstreamer.Streamer(
            bucket_name="bench",
            bucket_key="streamer",
            api_base=url,
            buffer_size=batch,
            spill_dir=spill,
            max_buffer=max(len(events), 10_000),
        )
        log = streamer.log
        started = time.perf_counter()
        for key, value, epoch in events:
            log(key, value, epoch)
        ok = streamer.flush(timeout=120)
        elapsed = time.perf_counter() - started
        stats = streamer.stats()
        streamer.close()
    if not ok or stats.get("sent") != len(events):
        raise SystemExit(f"streamer did not deliver everything: {stats}")
    return elapsed


def best_of(repeat: int, func: Callable[[], float | None]) -> float | None:
    times = [func() for _ in range(repeat)]
    if any(t is None for t in times):
        return None
    return min(t for t in times if t is not None)


def run(quick: bool) -> dict[str, Any]:
    """For ``python -m bench``: events/s at batches of 1000 against a redis-server of its own."""
    import shutil

    if shutil.which("redis-server") is None:
        return {"skipped": "redis-server is not installed"}
    sys.path.insert(0, str(TESTS))
    from redisserver import RedisServer

    count = 20_000 if quick else 200_000
    events = make_events(count)
    batches = [events[i : i + 1000] for i in range(0, count, 1000)]
    server = RedisServer(Path(tempfile.mkdtemp(prefix="redis-bench-"))).start()
    try:
        repeat = 1 if quick else 3
        sink_s = best_of(repeat, lambda: run_sink(server.url, batches))
        streamer_s = best_of(repeat, lambda: run_streamer(server.url, events, 1000))
    finally:
        server.kill()
    return {
        "sink_send_events_per_s": round(count / sink_s) if sink_s else None,
        "streamer_events_per_s": round(count / streamer_s) if streamer_s else None,
        "goal_events_per_s": GOAL,
    }


def cluster_row(batches: list[list[tuple]], repeat: int) -> float | None:
    sys.path.insert(0, str(TESTS))
    from rediscluster import RedisCluster

    with RedisCluster(Path(tempfile.mkdtemp(prefix="redis-cluster-bench-"))) as cluster:
        return best_of(repeat, lambda: run_cluster_sink(cluster.url, batches))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="use this Redis instead of starting a redis-server")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs per row")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="also time RedisClusterSink against a 3-node cluster of its own",
    )
    args = parser.parse_args(argv)

    server: Any = None
    url = args.url
    if url is None:
        sys.path.insert(0, str(TESTS))
        from redisserver import RedisServer

        server = RedisServer(Path(tempfile.mkdtemp(prefix="redis-bench-"))).start()
        url = server.url
    events = make_events(args.events)
    batches = [events[i : i + args.batch] for i in range(0, len(events), args.batch)]
    try:
        import redis

        print(
            f"redis-py {redis.__version__}, {args.events:,} events, batches of {args.batch}, "
            f"best of {args.repeat}"
        )
        rows = [
            ("redis-py pipeline", best_of(args.repeat, lambda: run_pipeline(url, batches))),
            ("sink.send", best_of(args.repeat, lambda: run_sink(url, batches))),
            ("Streamer", best_of(args.repeat, lambda: run_streamer(url, events, args.batch))),
        ]
        if args.cluster:
            rows.append(("cluster sink.send", cluster_row(batches, args.repeat)))
    finally:
        if server is not None:
            server.kill()
    print(f"{'path':<20}{'events/s':>12}{'µs/event':>10}{'goal':>8}")
    for name, elapsed in rows:
        if elapsed is None:
            print(f"{name:<20}{'(isstreamer.Streamer not available yet)':>30}")
            continue
        rate = args.events / elapsed
        verdict = "ok" if rate >= GOAL else "below"
        print(f"{name:<20}{rate:>12,.0f}{1e6 / rate:>10.2f}{verdict:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
