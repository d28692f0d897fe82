"""``isstreamer metrics``: the long-running system-telemetry agent (made to run under systemd).

SIGTERM/SIGINT stop it (delivering or spooling what is held); SIGHUP makes it re-read its
configuration (the ini file) at once; while it runs, a status file in the spool tells
``isstreamer status`` how it is doing (isstreamer/status.py says why there).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import threading
import time
from typing import Any

from ..errors import ConfigError
from ..metrics import Sample, SystemSampler
from ..pi_metrics import PiSampler
from ..redact import redact_url
from ..stats import LOSSES
from ..status import StatusFile
from ..streamer import Streamer
from . import options
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    add_deadline_argument,
    delivery_status,
    host_bucket_key,
    load,
    open_streamer,
    say,
)
from .signals import StopSignal

log = logging.getLogger("isstreamer")

FIRST_SAMPLE_AFTER = 1.0  # seconds: rates need two readings, and the first should come soon
BATCH_EVENTS = 200  # one request per sample instead of several (unless buffer_size is set)
TOTALS = ("sent", "spilled", *LOSSES)  # summed over the Streamers a reload replaced


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "metrics",
        parents=[common],
        help="stream this machine's CPU, memory, disk, network, Pi health...",
        description="Sample system metrics (psutil, and on a Raspberry Pi its throttling, "
        "Wi-Fi and SD card wear) every --interval seconds and stream them, by default to "
        "the bucket metrics-<hostname>. SIGTERM/SIGINT stop it cleanly; SIGHUP re-reads "
        "the configuration. Exit 0 when stopped, 1 when events were lost, 2 for a bad "
        "command line or configuration; with --once as for log.",
    )
    p.add_argument(
        "--interval",
        type=options.positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="seconds between samples (default 10)",
    )
    p.add_argument("--once", action="store_true", help="send one sample and exit")
    p.add_argument(
        "--print",
        action="store_true",
        help="print each sample to stdout as a JSON line (the format `isstreamer pipe` "
        "reads) and send nothing; with --once, one sample",
    )
    p.add_argument(
        "--no-per-cpu",
        dest="per_cpu",
        action="store_false",
        help="leave out the per-core cpu_N keys",
    )
    add_deadline_argument(p, "at shutdown")
    p.set_defaults(func=run_metrics)


class Sampler:
    """psutil's gauges and rates, plus what a Raspberry Pi reports (nothing elsewhere)."""

    def __init__(self, per_cpu: bool) -> None:
        self.system = SystemSampler(per_cpu=per_cpu)
        self.pi = PiSampler()

    def prime(self) -> None:
        self.system.prime()

    def sample(self) -> Sample:
        values = self.system.sample()
        values.update(self.pi.sample())
        return values


class Agent:
    """The Streamer the samples go to, replaced on reload, and the status file."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        # What a reload compares with: the configuration as read, not the Streamer's
        # settings, which the local collector's address or the host's bucket may fill in.
        self.values = dict(load(args).values)
        self.streamer = self._open()
        self.closed_totals = dict.fromkeys(TOTALS, 0)
        self.samples = 0
        spill_dir = self.streamer.settings.spill_dir
        self.status = StatusFile(str(spill_dir), "metrics") if spill_dir else None

    def _open(self) -> Streamer:
        host = socket.gethostname()
        return open_streamer(
            self.args,
            default_bucket_key=host_bucket_key("metrics"),
            default_bucket_name=f"{host} metrics",
            buffer_size=BATCH_EVENTS,
        )

    def log(self, values: Sample) -> None:
        epoch = time.time()
        for key, value in values.items():
            self.streamer.log(key, value, epoch)
        self.samples += 1
        self.write_status(force=self.samples == 1)  # first: who reads the line finds the file
        log.info(
            "metrics: sample %d, %d keys, to bucket %s",
            self.samples,
            len(values),
            self.streamer.BucketKey,
        )

    def reload(self) -> None:
        """Re-read the configuration; on an error keep streaming as before."""
        try:
            values = dict(load(self.args).values)
            if values == self.values:
                log.warning("metrics: SIGHUP: configuration unchanged")
                return
            fresh = self._open()
        except (ConfigError, ValueError, OSError) as exc:
            log.error("metrics: SIGHUP: %s; still streaming as before", exc)
            return
        old, self.streamer, self.values = self.streamer, fresh, values
        old.close(self.args.deadline)  # what it holds goes to its own receiver, or the spool
        stats: dict[str, Any] = dict(old.stats())
        for name in TOTALS:
            self.closed_totals[name] += stats[name]
        self.write_status(force=True)
        log.warning(
            "metrics: SIGHUP: configuration re-read; streaming to bucket %s at %s",
            fresh.BucketKey,
            redact_url(str(fresh.settings.api_base)),
        )

    def write_status(self, force: bool = False) -> None:
        if self.status is None:
            return
        settings = self.streamer.settings
        self.status.write(
            {
                "interval_s": self.args.interval,
                "samples": self.samples,
                "bucket_key": self.streamer.BucketKey,
                "api_base": redact_url(str(settings.api_base)),
                "config_file": str(settings.ini_path or ""),
                "stats": dict(self.streamer.stats()),
            },
            interval_s=self.args.interval,
            force=force,
        )

    def close(self) -> dict[str, int]:
        """Close the Streamer; the totals of this run over every reload."""
        self.streamer.close(self.args.deadline)
        if self.status is not None:
            self.status.remove()
        stats: dict[str, Any] = dict(self.streamer.stats())
        return {name: self.closed_totals[name] + stats[name] for name in TOTALS}


def _schedule(args: argparse.Namespace, stop: StopSignal, reload: threading.Event) -> Any:
    """Yields at each sample time until stopped; runs reload() (via the flag) in between.

    On a schedule, not "sleep interval after each sample": no drift over days.
    """
    next_at = time.monotonic() + min(args.interval, FIRST_SAMPLE_AFTER)
    while True:
        stop.nap(max(0.0, next_at - time.monotonic()))
        if stop.is_set():
            return
        if reload.is_set():
            reload.clear()
            yield False  # a reload, not a sample
            continue
        if time.monotonic() < next_at:
            continue
        yield True
        next_at += args.interval
        if next_at < time.monotonic():  # suspended or overloaded: skip, don't burst
            next_at = time.monotonic() + args.interval


def run_print(args: argparse.Namespace) -> int:
    """--print: samples as JSON lines on stdout, nothing sent, no configuration needed."""
    sampler = Sampler(args.per_cpu)
    with StopSignal() as stop:
        sampler.prime()
        for _ in _schedule(args, stop, threading.Event()):
            line = {**sampler.sample(), "epoch": round(time.time(), 3)}
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()
            if args.once:
                break
    return EXIT_OK


def run_metrics(args: argparse.Namespace) -> int:
    if args.print:
        return run_print(args)
    agent = Agent(args)
    sampler = Sampler(args.per_cpu)
    reload = threading.Event()
    with StopSignal() as stop:
        # The watcher thread only sets the flag; the reload runs here, between samples.
        if not args.once:
            stop.on(signal.SIGHUP, reload.set)
        try:
            sampler.prime()
            for sample_now in _schedule(args, stop, reload):
                if not sample_now:
                    agent.reload()
                    continue
                agent.log(sampler.sample())
                if args.once:
                    break
        finally:
            if stop.signum:
                log.info("metrics: %s received; flushing", stop.name)
            totals = agent.close()
    if args.once:
        return delivery_status(args, agent.streamer.stats())
    say(
        args,
        f"metrics: {agent.samples} samples, {totals['sent']} events delivered, "
        f"{totals['spilled']} kept in the spool"
        + (f", stopped by {stop.name}" if stop.signum else ""),
    )
    # A service stopped with events in the spool stopped cleanly: they are sent next time.
    lost = sum(totals[name] for name in LOSSES)
    if lost:
        say(args, f"{lost} events lost: {agent.streamer.stats()['last_error']}", always=True)
    return EXIT_FAILED if lost else EXIT_OK
