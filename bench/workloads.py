"""One benchmark workload per process: ``python -m bench.workloads '<json spec>'``.

The runner starts a fresh interpreter for every workload so threads, connections, the heap
and the GC of one cannot disturb the next. The result is printed as one ``RESULT {json}``
line (ISStreamer prints to stdout itself, so the prefix tells the two apart).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path
from time import perf_counter_ns
from typing import Any, Callable

from .clients import (
    ACCESS_KEY,
    BASELINES,
    KEY,
    baseline_poster,
    cpu_seconds,
    free_port,
    make_client,
    peak_rss_bytes,
    percentiles,
    prebuilt_bodies,
    rss_bytes,
    voluntary_switches,
)
from .receiver import Receiver

PER_SAMPLE = 100  # log() calls timed together: perf_counter_ns costs ~50-80 ns itself
WAIT_TIMEOUT = 900.0


def _time_floor(calls: int) -> list[float]:
    buffer: deque = deque()
    append, now, clock = buffer.append, time.time, perf_counter_ns
    samples = []
    for _ in range(calls // PER_SAMPLE):
        start = clock()
        for _ in range(PER_SAMPLE):
            append((KEY, 21.5, now()))
        samples.append((clock() - start) / PER_SAMPLE)
    return samples


def _time_log(log: Callable[..., Any], calls: int) -> list[float]:
    clock = perf_counter_ns
    samples = []
    for _ in range(calls // PER_SAMPLE):
        start = clock()
        for _ in range(PER_SAMPLE):
            log(KEY, 21.5)
        samples.append((clock() - start) / PER_SAMPLE)
    return samples


def log_cost(spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Per-call cost of log() next to the floor, with the worker shipping to the receiver."""
    calls = spec["calls"]
    gc.collect()
    _time_floor(PER_SAMPLE * 10)  # warm up the loop itself
    floor = percentiles(_time_floor(calls))
    # max_buffer holds the whole run: this measures log(), not the overflow-to-disk policy.
    options = {"max_buffer": calls + 10_000} if spec["impl"] == "isstreamer" else {}
    client, _flush = make_client(spec["impl"], spec["url"], spec["buffer_size"], workdir, **options)
    log = client.log
    _time_log(log, PER_SAMPLE * 10)
    gc.collect()
    measured = percentiles(_time_log(log, calls))
    return {"floor": floor, "log": measured, "calls": calls, "per_sample": PER_SAMPLE}


def deliver(spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """CPU per delivered event and end-to-end rate: first log() to last event received."""
    impl, batch, events = spec["impl"], spec["buffer_size"], spec["events"]
    receiver = Receiver(spec["port"])
    base = receiver.stats()["events"]
    warm = 2 * batch
    if impl == "requests+json":
        post, _close = baseline_poster(impl, spec["url"])
        now = time.time()
        batches = [
            [(KEY, float(i + j), now) for j in range(batch)] for i in range(0, events + warm, batch)
        ]

        def encode(events: list) -> bytes:
            dicts = [{"key": k, "value": v, "epoch": e} for k, v, e in events]
            return json.dumps(dicts, separators=(",", ":")).encode()

        for chunk in batches[:2]:
            post(encode(chunk))
        receiver.wait(base + warm, WAIT_TIMEOUT)
        gc.collect()
        cpu0, start = cpu_seconds(), time.monotonic()
        for chunk in batches[2:]:
            post(encode(chunk))
    elif impl in BASELINES:
        bodies = prebuilt_bodies(events + warm, batch)
        post, _close = baseline_poster(impl, spec["url"])
        for body in bodies[:2]:
            post(body)
        receiver.wait(base + warm, WAIT_TIMEOUT)
        gc.collect()
        cpu0, start = cpu_seconds(), time.monotonic()
        for body in bodies[2:]:
            post(body)
    else:
        options = {"max_buffer": events + 10_000} if impl == "isstreamer" else {}
        client, flush = make_client(impl, spec["url"], batch, workdir, **options)
        log = client.log
        for i in range(warm):  # bucket creation and the connection happen outside the timing
            log(KEY, float(i))
        flush()
        receiver.wait(base + warm, WAIT_TIMEOUT)
        gc.collect()
        cpu0, start = cpu_seconds(), time.monotonic()
        for i in range(events):
            log(KEY, float(i))
        if impl != "isstreamer":
            flush()  # ISStreamer ships its last batch only when flushed
        # Our worker ships full batches by itself; waiting in flush() instead of on the
        # receiver would add a wake-up of the waiting thread per batch to the CPU measured.
    info = receiver.wait(base + warm + events, WAIT_TIMEOUT)
    cpu = cpu_seconds() - cpu0
    delivered = info["events"] - base - warm
    elapsed = info["last"] - start
    return {
        "events": events,
        "delivered": delivered,
        "cpu_s": round(cpu, 4),
        "cpu_per_10k_s": round(cpu / events * 10_000, 4),
        "seconds": round(elapsed, 4),
        "events_per_s": round(delivered / elapsed, 1),
    }


def outage(spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """RSS growth while logging with the receiver down, then the time to drain once it is up."""
    impl, events = spec["impl"], spec["events"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    client, flush = make_client(impl, url, spec["buffer_size"], workdir)
    log = client.log
    gc.collect()
    rss0 = rss_bytes()
    start = time.monotonic()
    samples = _time_log(log, events)  # log() per call while the sink is down, too
    logged = time.monotonic()
    out: dict[str, Any] = {
        "events": events,
        "log_seconds": round(logged - start, 3),
        "log": percentiles(samples),
        "rss_growth_mib": round((peak_rss_bytes() - rss0) / 2**20, 1),
        "rss_after_log_mib": round((rss_bytes() - rss0) / 2**20, 1),
    }
    # The outage goes on for a while after the last event: long enough for ISStreamer's ship
    # threads to give up, and for our circuit to back off its probes, as in a real outage.
    time.sleep(spec["down_s"])
    out["down_s"] = spec["down_s"]
    out["rss_growth_down_mib"] = round((peak_rss_bytes() - rss0) / 2**20, 1)
    receiver = Receiver(port).start()
    try:
        up = time.monotonic()
        if impl == "isstreamer":
            info = receiver.wait(events, WAIT_TIMEOUT)
            out["stats"] = {k: v for k, v in client.stats().items() if isinstance(v, int)}
        else:  # ISStreamer never replays: wait for its threads to give up or deliver
            for thread in threading.enumerate():
                if thread is not threading.current_thread() and not thread.daemon:
                    thread.join(120)
            flush()
            info = receiver.stats()
            missed = workdir / "err_missed_events.txt"
            out["missed_file_bytes"] = missed.stat().st_size if missed.exists() else 0
        out["delivered"] = info["events"]
        out["peak_rss_growth_mib"] = round((peak_rss_bytes() - rss0) / 2**20, 1)
        if info["first"] is not None:
            out["first_delivery_after_up_s"] = round(info["first"] - up, 3)
        if info["events"] >= events:
            out["drain_s"] = round(info["last"] - up, 3)
            out["drain_events_per_s"] = (
                round(events / (info["last"] - info["first"]), 1)
                if info["last"] > info["first"]
                else None
            )
    finally:
        receiver.stop()
    return out


def idle(spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """CPU and wake-ups of a started, connected, idle streamer over ``seconds``."""
    receiver = Receiver(spec["port"])
    base = receiver.stats()["events"]
    client, flush = make_client(spec["impl"], spec["url"], spec["buffer_size"], workdir)
    client.log(KEY, 1.0)
    flush()
    receiver.wait(base + 1, WAIT_TIMEOUT)
    time.sleep(0.2)  # let the worker finish its turn and go to sleep
    cpu0, switches0 = cpu_seconds(), voluntary_switches()
    time.sleep(spec["seconds"])
    cpu = cpu_seconds() - cpu0
    return {
        "seconds": spec["seconds"],
        "cpu_s": round(cpu, 5),
        "cpu_per_10s": round(cpu / spec["seconds"] * 10, 5),
        "wakeups": voluntary_switches() - switches0 - 1,
    }  # minus the main thread's sleep


def replay(spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Events/s replayed from spill files by a Streamer started over a full spool."""
    from isstreamer import Streamer
    from isstreamer.sinks.base import Bucket
    from isstreamer.sinks.initialstate import public_address
    from isstreamer.spool import Spool

    events, per_file = spec["events"], spec["per_file"]
    spool_dir = workdir / "spool"
    spool = Spool(spool_dir)
    now = time.time()
    for first in range(0, events, per_file):
        batch = [(KEY, float(i), now) for i in range(first, min(events, first + per_file))]
        spool.write(Bucket("bench", "bench"), batch, sink=public_address(spec["url"]))
    receiver = Receiver(spec["port"])
    base = receiver.stats()["events"]
    gc.collect()
    cpu0, start = cpu_seconds(), time.monotonic()
    streamer = Streamer(
        bucket_name="bench",
        bucket_key="bench",
        access_key="bench-access-key",
        api_base=spec["url"],
        buffer_size=spec["buffer_size"],
        spill_dir=str(spool_dir),
    )
    info = receiver.wait(base + events, WAIT_TIMEOUT)
    cpu = cpu_seconds() - cpu0
    elapsed = info["last"] - start
    streamer.close(5)
    return {
        "events": events,
        "files": -(-events // per_file),
        "seconds": round(elapsed, 3),
        "events_per_s": round((info["events"] - base) / elapsed, 1),
        "cpu_per_10k_s": round(cpu / events * 10_000, 4),
    }


class FloorClient:
    """The floor of the realistic-rate goal: a deque, a thread woken by an Event when a full
    batch waits, json.dumps per batch, one keep-alive http.client connection. No retries,
    no disk, no validation: what any client has to pay at the least."""

    def __init__(self, url: str, batch: int) -> None:
        self.batch = batch
        self.items: deque = deque()
        self.wake = threading.Event()
        self.flushing = False
        self.post, self._close = baseline_poster("http.client", url)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def log(self, key: str, value: Any) -> None:
        self.items.append((key, value, time.time()))
        if len(self.items) >= self.batch:
            self.wake.set()

    def flush(self) -> None:
        self.flushing = True
        self.wake.set()

    def _run(self) -> None:
        items, popleft = self.items, self.items.popleft
        while True:
            self.wake.wait()
            self.wake.clear()
            while len(items) >= self.batch or (self.flushing and items):
                chunk = [popleft() for _ in range(min(self.batch, len(items)))]
                body = [{"key": k, "value": v, "epoch": e} for k, v, e in chunk]
                self.post(json.dumps(body, separators=(",", ":")).encode())


def sensor(spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """A realistic sensor loop: ``keys`` keys at ``hz`` for ``seconds``, CPU per delivered event."""
    impl, batch = spec["impl"], spec["buffer_size"]
    keys = [f"sensor_{i:02d}" for i in range(spec["keys"])]
    ticks = int(spec["seconds"] * spec["hz"])
    events = ticks * len(keys)
    receiver = Receiver(spec["port"])
    base = receiver.stats()["events"]
    warm = 2 * batch
    if impl == "floor":
        client: Any = FloorClient(spec["url"], batch)
        flush: Callable[[], Any] = client.flush
    else:
        client, flush = make_client(impl, spec["url"], batch, workdir)
    log = client.log
    for i in range(warm):  # the connection and the bucket are made outside the timing
        log(keys[0], float(i))
    flush()
    receiver.wait(base + warm, WAIT_TIMEOUT)
    if impl == "floor":
        client.flushing = False
    gc.collect()
    period = 1.0 / spec["hz"]
    cpu0, switches0 = cpu_seconds(), voluntary_switches()
    start = next_tick = time.monotonic()
    for tick in range(ticks):
        for key in keys:
            log(key, 20.0 + tick % 50 * 0.1)
        next_tick += period
        pause = next_tick - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    flush()
    info = receiver.wait(base + warm + events, WAIT_TIMEOUT)
    cpu = cpu_seconds() - cpu0
    delivered = info["events"] - base - warm
    return {
        "events": events,
        "delivered": delivered,
        "seconds": round(time.monotonic() - start, 3),
        "cpu_s": round(cpu, 4),
        "cpu_per_10k_s": round(cpu / max(1, delivered) * 10_000, 4),
        "wakeups_per_s": round((voluntary_switches() - switches0) / (time.monotonic() - start), 1),
    }


def burst(spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """A burst with default settings, then close(): delivered by close(), no spill file?

    ``requests+json`` posts the same batches with json.dumps over one requests.Session; both
    are timed from the first event to the call that returns once everything is delivered.
    """
    impl, batch, events = spec["impl"], spec["buffer_size"], spec["events"]
    receiver = Receiver(spec["port"])
    base = receiver.stats()["events"]
    warm = 2 * batch
    out: dict[str, Any] = {"events": events}
    if impl == "requests+json":
        post, _close = baseline_poster(impl, spec["url"])
        now = time.time()
        batches = [
            [(KEY, float(i + j), now) for j in range(batch)] for i in range(0, events, batch)
        ]
        post(json.dumps([{"key": KEY, "value": 0.0, "epoch": now}] * warm).encode())
        receiver.wait(base + warm, WAIT_TIMEOUT)
        gc.collect()
        start = time.monotonic()
        for chunk in batches:
            body = [{"key": k, "value": v, "epoch": e} for k, v, e in chunk]
            post(json.dumps(body, separators=(",", ":")).encode())
        done = time.monotonic()
    else:
        from isstreamer import Streamer

        spool = workdir / "spool"
        streamer = Streamer(
            bucket_name="bench",
            bucket_key="bench",
            access_key=ACCESS_KEY,
            api_base=spec["url"],
            buffer_size=batch,
            spill_dir=str(spool),
        )
        log = streamer.log
        for i in range(warm):
            log(KEY, float(i))
        streamer.flush(600)
        receiver.wait(base + warm, WAIT_TIMEOUT)
        gc.collect()
        start = time.monotonic()
        for i in range(events):
            log(KEY, float(i))
        out["close_ok"] = streamer.close(600)
        done = time.monotonic()
        stats = streamer.stats()
        out["spilled"] = stats.get("spilled", 0)
        out["spill_files_left"] = len(list(spool.rglob("*.json"))) if spool.exists() else 0
    info = receiver.stats()
    out["delivered_by_return"] = info["events"] - base - warm
    out["seconds"] = round(done - start, 4)
    out["events_per_s"] = round(out["delivered_by_return"] / (done - start), 1)
    return out


WORKLOADS = {
    "log_cost": log_cost,
    "deliver": deliver,
    "outage": outage,
    "idle": idle,
    "replay": replay,
    "sensor": sensor,
    "burst": burst,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    try:
        result = WORKLOADS[spec["workload"]](spec, Path(os.getcwd()))
    except Exception as exc:  # noqa: BLE001 - reported in the table rather than stopping the whole run
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print("RESULT " + json.dumps(result), flush=True)
    # Leave at once: ISStreamer's non-daemon threads, or a Streamer still shipping the backlog
    # of a log_cost run, would otherwise keep the process (and the runner) waiting.
    os._exit(0)


if __name__ == "__main__":
    main()
