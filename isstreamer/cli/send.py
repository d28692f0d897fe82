"""``isstreamer log`` (one event) and ``isstreamer pipe`` (events from stdin)."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import threading
import time
from typing import Any

from ..events import flatten, make_event
from ..sinks.base import Event
from ..streamer import Streamer
from ..text import parse_time as parse_epoch
from ..text import parse_value
from .common import (
    EXIT_CONFIG,
    add_deadline_argument,
    delivery_status,
    host_bucket_key,
    open_streamer,
    say,
)
from .signals import StopSignal

log = logging.getLogger("isstreamer")

MAX_LINE_BYTES = 1024 * 1024
# Events logged between flushes, plus what one read can hold (~4000 lines of 16 KiB), stay
# well below the Streamer's max_buffer, so reading faster than the receiver never spills.
BACKPRESSURE_EVENTS = 2000
READ_BYTES = 16384
MAX_BAD_REPORTED = 100  # bad lines named one by one on stderr; later ones are only counted
LINE_FORMATS = "key,value  key=value  key,value,epoch  or a JSON object"


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "log",
        parents=[common],
        help="send one event",
        description="Send one event. Exit 0 once it was delivered, 75 when it is only kept "
        "in the spool (sent later), 1 when it is lost or the access key was refused, 2 for "
        "an invalid key, value or --epoch.",
    )
    p.add_argument("key")
    p.add_argument("value", help="21.5 is sent as a number, true/false as booleans (see --string)")
    p.add_argument(
        "--epoch", help="the event's time: seconds since 1970 or ISO 8601 (default: now)"
    )
    p.add_argument(
        "--string", action="store_true", help="send the value as a string, whatever it looks like"
    )
    add_deadline_argument(p, "at exit")
    p.set_defaults(func=run_log)

    p = sub.add_parser(
        "pipe",
        parents=[common],
        help="send events read from stdin, one per line",
        description=f"Read events from stdin until EOF, SIGINT or SIGTERM. Lines: {LINE_FORMATS} "
        '(several keys, one optional "epoch" field). Bad lines are reported '
        "on stderr and skipped. Exit status as for log.",
    )
    p.add_argument(
        "--string",
        action="store_true",
        help="send key,value and key=value values as strings (JSON keeps its own types)",
    )
    add_deadline_argument(p, "at the end")
    p.set_defaults(func=run_pipe)


def run_log(args: argparse.Namespace) -> int:
    # One deadline for the whole run, starting now: connecting and creating the bucket
    # spend from it too, so --deadline 2 ends the command about 2 s after it began.
    deadline = time.monotonic() + args.deadline
    try:
        value = args.value if args.string else parse_value(args.value)
        epoch = parse_epoch(args.epoch) if args.epoch is not None else None
        event = make_event(args.key, value, epoch)
    except ValueError as exc:  # InvalidEvent too: the command line is wrong
        say(args, f"event not sent: {exc}", always=True)
        return EXIT_CONFIG
    streamer = open_streamer(args, default_bucket_key=host_bucket_key("log"))
    try:
        streamer.log(*event)
    finally:
        streamer.close(max(0.0, deadline - time.monotonic()))  # delivers, spills the rest
    return delivery_status(args, streamer.stats())


def parse_line(text: str, force_string: bool = False) -> list[Event]:
    """The events of one line; ValueError says why the line is bad."""
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"invalid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise ValueError("a JSON line must be an object")
        epoch: Any = obj.pop("epoch", None)
        if isinstance(epoch, str):
            epoch = parse_epoch(epoch)
        if not obj:
            raise ValueError("the JSON object has no values")
        return [make_event(k, v, epoch) for k, v in flatten(obj, "")]
    eq, comma = text.find("="), text.find(",")
    epoch = None
    if eq > 0 and (comma < 0 or eq < comma):
        key, value = text[:eq], text[eq + 1 :]
    elif comma > 0:
        fields = next(csv.reader([text]))  # so "msg,\"a, b\"" keeps its comma
        if len(fields) == 3:
            epoch = parse_epoch(fields[2])
        elif len(fields) != 2:
            raise ValueError(
                f"expected 2 or 3 comma-separated fields, found {len(fields)} "
                "(quote a value that contains commas)"
            )
        key, value = fields[0], fields[1]
    else:
        raise ValueError(f"expected {LINE_FORMATS}")
    key, value = key.strip(), value.strip()
    if not value:
        raise ValueError(f"no value for key {key!r}")
    return [make_event(key, value if force_string else parse_value(value), epoch)]


class LineReader:
    """Reads stdin on its own thread; the main thread waits for EOF or a signal.

    os.read() on the descriptor, not sys.stdin: a daemon thread blocked inside a buffered
    file object would make the interpreter abort at exit when it tries to take its lock.
    """

    def __init__(self, streamer: Streamer, force_string: bool, wait: float) -> None:
        self.streamer = streamer
        self.force_string = force_string
        self.wait = wait  # seconds to wait for the receiver before reading on
        self.lock = threading.Lock()  # held while a chunk is logged; close() waits for it
        self.closed = False
        self.lines = self.events = self.bad = 0
        self._flushed = 0  # self.events at the last flush

    def run(self, fd: int, stop: StopSignal) -> None:
        pending, skipping = b"", False
        try:
            while True:
                chunk = os.read(fd, READ_BYTES)
                with self.lock:
                    if self.closed:
                        return
                    if not chunk:
                        if pending and not skipping:
                            self.line(pending)
                        return
                    *lines, pending = (pending + chunk).split(b"\n")
                    for raw in lines:
                        if skipping:
                            skipping = False  # the end of an overlong line
                        else:
                            self.line(raw)
                    if len(pending) > MAX_LINE_BYTES and not skipping:
                        self.lines += 1
                        self.report(f"longer than {MAX_LINE_BYTES} bytes")
                        pending, skipping = b"", True
                    elif skipping:
                        pending = b""
                    log.debug("pipe: %d lines read", self.lines)
                if self.events - self._flushed >= BACKPRESSURE_EVENTS:
                    # Input faster than the receiver: stop reading until it has caught up, so
                    # the producer slows down instead of the memory bound sending events to disk.
                    self._flushed = self.events
                    self.streamer.flush(self.wait)
        except OSError as exc:
            log.error("cannot read stdin: %s", exc)
        finally:
            stop.set()

    def line(self, raw: bytes) -> None:
        self.lines += 1
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            return self.report("not UTF-8 text")
        if not text or text.startswith("#"):
            return None
        try:
            events = parse_line(text, self.force_string)
        except ValueError as exc:
            return self.report(str(exc))
        for event in events:
            self.streamer.log(*event)
        self.events += len(events)
        return None

    def report(self, reason: str) -> None:
        self.bad += 1
        if self.bad <= MAX_BAD_REPORTED:
            print(
                f"isstreamer pipe: line {self.lines}: {reason}; skipped",
                file=sys.stderr,
                flush=True,
            )


def run_pipe(args: argparse.Namespace, stdin_fd: int | None = None) -> int:
    streamer = open_streamer(args, default_bucket_key=host_bucket_key("log"))
    reader = LineReader(streamer, args.string, args.deadline)
    with StopSignal() as stop:
        thread = threading.Thread(
            target=reader.run,
            args=(sys.stdin.fileno() if stdin_fd is None else stdin_fd, stop),
            name="isstreamer-pipe",
            daemon=True,
        )
        thread.start()
        stop.wait()
        with reader.lock:  # a chunk already read is logged completely, later ones not at all
            reader.closed = True
        if stop.signum:
            log.info("pipe: %s received; flushing", stop.name)
        streamer.close(args.deadline)
    stats = streamer.stats()
    bad = f", {reader.bad} bad" if reader.bad else ""
    say(
        args,
        f"pipe: {reader.lines} lines{bad}, {reader.events} events; {stats['sent']} delivered, "
        f"{stats['spilled']} kept in the spool"
        + (f", stopped by {stop.name}" if stop.signum else ""),
    )
    return delivery_status(args, streamer.stats())
