#!/usr/bin/env python3
"""Events/s into a v3io stream: the v3io sink against the official SDK, same emulator, same run.

    python bench/v3io_bench.py                      # 100,000 events, batches of 1000, best of 3
    python bench/v3io_bench.py --events 300000 --repeat 5

The emulator (tests/v3ioserver.py, retaining no data) runs in a process of its own, so the
client CPU per event below is the client's alone. Rows:
  emulator, 1 conn     one pre-encoded PutRecords body posted over and over with http.client:
                       the most the emulator takes on one connection (the ceiling of every
                       one-connection row)
  emulator, 8 conns    the same from 8 threads: the emulator's ceiling for batch mode
  SDK put_records      client.stream.put_records(), one call at a time, records built from the
                       events (json.dumps of each event) inside the timing
  SDK batch, 8 conns   client.batch.stream.put_records() for every batch, then batch.wait(),
                       Client(max_connections=8)
  sink.send            V3ioSink.send() with the batches (encoding, base64, one request each)
  Streamer             Streamer(api_base=v3io+http://..., buffer_size=1000).log() per event,
                       then flush(): logging, batching, the worker thread and the sink
Goal (issue 14): the sink >= 1.5x the SDK's best row. ``--latency-ms 20`` makes every answer
take 20 ms at least, as a distant platform would: then one connection, not CPU, is the limit.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import isstreamer
from isstreamer.sinks.base import Bucket
from isstreamer.sinks.v3io import V3ioSink

TESTS = Path(__file__).resolve().parent.parent / "tests"
KEY = "bench-access-key"
CONTAINER, STREAM = "bench", "stream"  # created by the emulator's main, 8 shards
GOAL_RATIO = 1.5

Timing = tuple[float, float]  # (wall seconds, client CPU seconds)


def make_events(n: int) -> list[tuple]:
    values = [21.5, True, "on", 42]
    return [(f"sensor{i % 10}", values[i % 4], 1_700_000_000.0 + i / 1000) for i in range(n)]


class Emulator:
    """tests/v3ioserver.py in a subprocess; its URL is read from its first line."""

    def __init__(self, latency_ms: float = 0.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(TESTS / "v3ioserver.py"), KEY, str(latency_ms)],
            cwd=TESTS,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(TESTS)),
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise SystemExit("the v3io emulator did not start")
        self.api_base = f"v3io+{self.url}/{CONTAINER}/{STREAM}"

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # the emulator serves until its stdin closes
        self.proc.wait(timeout=10)


def timed(func: Callable[[], None]) -> Timing:
    cpu, wall = time.process_time(), time.perf_counter()
    func()
    return time.perf_counter() - wall, time.process_time() - cpu


def sdk_records(batch: list[tuple], bucket: str) -> list[dict]:
    """What an SDK user writes to put the same records as the sink (same Data, same key)."""
    return [
        {
            "data": json.dumps(
                {"key": k, "value": v, "epoch": e, "bucketKey": bucket, "bucketName": bucket}
            ),
            "partition_key": bucket,
        }
        for k, v, e in batch
    ]


def run_floor(emu: Emulator, batches: list[list[tuple]], connections: int) -> Timing:
    """The emulator's ceiling: one ready body posted len(batches) times over ``connections``."""
    sink = V3ioSink(emu.api_base, KEY)
    body = b'{"Records":[' + b",".join(sink._records(Bucket("floor"), batches[0])) + b"]}"
    sink.close()
    host = emu.url.split("//", 1)[1]
    headers = {
        "Content-Type": "application/json",
        "X-v3io-function": "PutRecords",
        "X-v3io-session-key": KEY,
    }
    path = f"/{CONTAINER}/{STREAM}/"

    def post(times: int) -> None:
        conn = http.client.HTTPConnection(host, timeout=60)
        for _ in range(times):
            conn.request("POST", path, body, headers)
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                raise SystemExit(f"emulator answered {answer.status}")
        conn.close()

    share = [
        len(batches) // connections + (i < len(batches) % connections) for i in range(connections)
    ]

    def run() -> None:
        threads = [threading.Thread(target=post, args=(n,)) for n in share]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    return timed(run)


def run_sdk(
    emu: Emulator, batches: list[list[tuple]], connections: int, batch_mode: bool
) -> Timing:
    import v3io.dataplane

    client = v3io.dataplane.Client(endpoint=emu.url, access_key=KEY, max_connections=connections)
    client.stream.put_records(CONTAINER, STREAM, sdk_records(batches[0][:1], "sdk"))  # connect

    def one_at_a_time() -> None:
        for batch in batches:
            answer = client.stream.put_records(CONTAINER, STREAM, sdk_records(batch, "sdk"))
            if answer.output.failed_record_count:
                raise SystemExit("records failed")

    def batched() -> None:
        for batch in batches:
            client.batch.stream.put_records(CONTAINER, STREAM, sdk_records(batch, "sdk"))
        for answer in client.batch.wait():
            if answer.output.failed_record_count:
                raise SystemExit("records failed")

    try:
        return timed(batched if batch_mode else one_at_a_time)
    finally:
        client.close()


def run_sink(emu: Emulator, batches: list[list[tuple]]) -> Timing:
    sink = V3ioSink(emu.api_base, KEY)
    bucket = Bucket("sink")
    sink.send(bucket, batches[0][:1])  # connect outside the timing

    def run() -> None:
        for batch in batches:
            result = sink.send(bucket, batch)
            if not result.ok:
                raise SystemExit(f"send failed: {result}")

    try:
        return timed(run)
    finally:
        sink.close()


def run_streamer(emu: Emulator, events: list[tuple], batch: int) -> Timing:
    with tempfile.TemporaryDirectory() as spill:
        streamer = isstreamer.Streamer(
            bucket_key="streamer",
            api_base=emu.api_base,
            access_key=KEY,
            buffer_size=batch,
            spill_dir=spill,
            max_buffer=max(len(events), 10_000),
        )
        log = streamer.log
        ok = False

        def run() -> None:
            nonlocal ok
            for key, value, epoch in events:
                log(key, value, epoch)
            ok = streamer.flush(timeout=300)

        timing = timed(run)
        stats = streamer.stats()
        streamer.close()
    if not ok or stats.get("sent") != len(events):
        raise SystemExit(f"streamer did not deliver everything: {stats}")
    return timing


def best_of(repeat: int, func: Callable[[], Timing]) -> Timing:
    return min(func() for _ in range(repeat))


def measure(
    events: list[tuple], batch: int, repeat: int, latency_ms: float = 0.0
) -> dict[str, Timing]:
    batches = [events[i : i + batch] for i in range(0, len(events), batch)]
    emu = Emulator(latency_ms)
    try:
        return {
            "emulator, 1 conn": best_of(repeat, lambda: run_floor(emu, batches, 1)),
            "emulator, 8 conns": best_of(repeat, lambda: run_floor(emu, batches, 8)),
            "SDK put_records": best_of(repeat, lambda: run_sdk(emu, batches, 1, False)),
            "SDK batch, 8 conns": best_of(repeat, lambda: run_sdk(emu, batches, 8, True)),
            "sink.send": best_of(repeat, lambda: run_sink(emu, batches)),
            "Streamer": best_of(repeat, lambda: run_streamer(emu, events, batch)),
        }
    finally:
        emu.close()


def run(quick: bool) -> dict[str, Any]:
    """For ``python -m bench``: events/s and client CPU per event of each row."""
    try:
        import v3io.dataplane  # noqa: F401 (the test extra installs it)
    except ImportError:
        return {"skipped": "the v3io SDK is not installed: pip install 'isstreamer-agent[test]'"}
    count = 20_000 if quick else 100_000
    rows = measure(make_events(count), 1000, 1 if quick else 3)
    out: dict[str, Any] = {
        name: {
            "events_per_s": round(count / wall),
            "client_cpu_us_per_event": round(cpu / count * 1e6, 2),
        }
        for name, (wall, cpu) in rows.items()
    }
    sdk_best = max(
        out["SDK put_records"]["events_per_s"], out["SDK batch, 8 conns"]["events_per_s"]
    )
    out["goal"] = {
        "sink_vs_sdk_best": round(out["sink.send"]["events_per_s"] / sdk_best, 2),
        "goal_ratio": GOAL_RATIO,
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs per row")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="the emulator answers no sooner than this (a distant platform)",
    )
    args = parser.parse_args(argv)
    import v3io

    version = getattr(v3io, "__version__", "")
    print(
        f"v3io SDK {version or '(version unknown)'}, {args.events:,} events, batches of "
        f"{args.batch}, best of {args.repeat}, emulator in its own process"
        + (f", answering after {args.latency_ms:g} ms" if args.latency_ms else "")
    )
    rows = measure(make_events(args.events), args.batch, args.repeat, args.latency_ms)
    sdk_best = min(rows["SDK put_records"][0], rows["SDK batch, 8 conns"][0])
    print(f"{'path':<22}{'events/s':>12}{'client CPU µs/event':>21}{'vs SDK best':>13}")
    for name, (wall, cpu) in rows.items():
        ratio = f"{sdk_best / wall:.2f}x" if not name.startswith("emulator") else ""
        print(f"{name:<22}{args.events / wall:>12,.0f}{cpu / args.events * 1e6:>21.2f}{ratio:>13}")
    sink_ratio = sdk_best / rows["sink.send"][0]
    print(
        f"goal: sink.send >= {GOAL_RATIO}x the SDK's best: {sink_ratio:.2f}x "
        f"({'met' if sink_ratio >= GOAL_RATIO else 'not met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
