"""``isstreamer replay``: send what is waiting on disk now, with progress on stderr."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ..failures import needs_a_fix
from ..replay import ReplayResult, replay
from . import options
from .common import EXIT_FAILED, EXIT_OK, EXIT_SPOOLED, load, receiver, say
from .signals import StopSignal


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "replay",
        parents=[common],
        help="send spilled events now (or legacy ISStreamer files)",
        description="Send spill files now: the spool by default, or the given spill files and "
        "spool directories. ISStreamer's err_missed_events.txt and offline CSV "
        "files (epoch,key,value) go to --bucket-key or the configured bucket. "
        "Exit 0 when everything was delivered, 75 when some stays in the spool for "
        "later (the receiver is unreachable), 1 when events were refused, quarantined "
        "or unreadable, or the access key or the address was refused.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument(
        "--timeout",
        type=options.seconds,
        metavar="SECONDS",
        help="stop after this long; the rest stays on disk",
    )
    p.add_argument(
        "--any-receiver",
        action="store_true",
        help="also send spill files recorded for another receiver (after switching from the "
        "local collector to Initial State, say) to the configured one",
    )
    p.set_defaults(func=run_replay)


class ProgressLine:
    """Progress on stderr for replays that take more than a second: in place on a terminal."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.enabled = not args.quiet
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int, rate: float) -> None:
        now = time.monotonic()
        if (
            not self.enabled
            or now - self.started < 1.0
            or now - self.last < (0.25 if self.tty else 10.0)
        ):
            return
        self.last = now
        line = f"replay: {done:,} of {total:,} events, {rate:,.0f}/s, {max(0, total - done):,} left"
        sys.stderr.write(f"\r{line}\033[K" if self.tty else f"isstreamer: {line}\n")
        sys.stderr.flush()
        self.shown = True

    def finish(self) -> None:
        if self.shown and self.tty:
            sys.stderr.write("\n")


def _summary(result: ReplayResult) -> str:
    if result.ok:
        return (
            f"replay: {result.sent:,} events delivered"
            if result.sent
            else "replay: nothing to replay"
        )
    parts = [f"{result.sent:,} delivered"]
    for count, what in (
        (result.failed, "failed"),
        (result.quarantined, "quarantined"),
        (result.remaining, "still in the spool"),
        (result.skipped, "unreadable, skipped"),
    ):
        if count:
            parts.append(f"{count:,} {what}")
    error = f" (last error: {result.last_error})" if result.last_error else ""
    return "replay: " + ", ".join(parts) + error


def run_replay(args: argparse.Namespace) -> int:
    settings = load(args)
    chosen = receiver(args, settings)
    progress = ProgressLine(args)
    with StopSignal() as stop:
        try:
            result = replay(
                args.paths or None,
                access_key=chosen.get("access_key", args.access_key),
                api_base=chosen.get("api_base", args.api_base),
                bucket_key=args.bucket_key,
                bucket_name=args.bucket_name,
                ini_file_location=args.config,
                spill_dir=args.spill_dir,
                timeout=args.timeout,
                progress=progress,
                stop_event=stop.event,
                any_receiver=args.any_receiver,
            )
        finally:
            progress.finish()
    say(
        args,
        _summary(result) + (f"; stopped by {stop.name}" if stop.signum else ""),
        always=not result.ok,
    )
    return replay_status(result)


def replay_status(result: ReplayResult) -> int:
    """0 all delivered; 75 the rest waits in the spool; 1 something needs a person's look."""
    if result.ok:
        return EXIT_OK
    if (
        result.quarantined
        or result.dropped
        or result.skipped
        or needs_a_fix(result.last_error)
        or not result.remaining
    ):
        return EXIT_FAILED
    return EXIT_SPOOLED
