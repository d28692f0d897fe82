"""``isstreamer metrics``: the long-running system-telemetry agent (made to run under systemd)."""

from __future__ import annotations

import argparse
import logging
import socket
import time
from typing import Any

from ..metrics import SystemSampler
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    add_deadline_argument,
    host_bucket_key,
    open_streamer,
    say,
)
from .signals import StopSignal

log = logging.getLogger("isstreamer")

FIRST_SAMPLE_AFTER = 1.0  # seconds: rates need two readings, and the first should come soon
BATCH_EVENTS = 200  # one request per sample instead of several (unless buffer_size is set)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "metrics",
        parents=[common],
        help="stream this machine's CPU, memory, disk, network...",
        description="Sample system metrics with psutil every --interval seconds and stream "
        "them, by default to the bucket metrics-<hostname>. Stops cleanly on "
        "SIGTERM/SIGINT.",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="seconds between samples (default 10)",
    )
    p.add_argument("--once", action="store_true", help="send one sample and exit")
    p.add_argument(
        "--no-per-cpu",
        dest="per_cpu",
        action="store_false",
        help="leave out the per-core cpu_N keys",
    )
    add_deadline_argument(p, "at shutdown")
    p.set_defaults(func=run_metrics)


def run_metrics(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        say(args, "--interval must be more than 0 seconds", always=True)
        return EXIT_FAILED
    host = socket.gethostname()
    streamer = open_streamer(
        args,
        default_bucket_key=host_bucket_key("metrics"),
        default_bucket_name=f"{host} metrics",
        buffer_size=BATCH_EVENTS,
    )
    sampler = SystemSampler(per_cpu=args.per_cpu)
    samples = 0
    with StopSignal() as stop:
        try:
            sampler.prime()
            # On a schedule, not "sleep interval after each sample": no drift over days.
            next_at = time.monotonic() + min(args.interval, FIRST_SAMPLE_AFTER)
            while not stop.wait(max(0.0, next_at - time.monotonic())):
                values = sampler.sample()
                epoch = time.time()
                for key, value in values.items():
                    streamer.log(key, value, epoch)
                samples += 1
                log.info(
                    "metrics: sample %d, %d keys, to bucket %s",
                    samples,
                    len(values),
                    streamer.BucketKey,
                )
                if args.once:
                    break
                next_at += args.interval
                if next_at < time.monotonic():  # suspended or overloaded: skip, don't burst
                    next_at = time.monotonic() + args.interval
        finally:
            if stop.signum:
                log.info("metrics: %s received; flushing", stop.name)
            streamer.close(args.deadline)
    stats = streamer.stats()
    if not args.once:
        say(
            args,
            f"metrics: {samples} samples, {stats['sent']} events delivered, "
            f"{stats['spilled']} kept in the spool"
            + (f", stopped by {stop.name}" if stop.signum else ""),
        )
    if stats["spilled"] and args.once:
        say(
            args,
            f"{stats['spilled']} events not delivered yet ({stats['last_error']}); "
            "kept in the spool",
        )
    lost = stats["dropped"] + stats["quarantined"]
    if lost:
        say(args, f"{lost} events lost: {stats['last_error']}", always=True)
    return EXIT_FAILED if lost else EXIT_OK
