"""`isstreamer serve`: the command-line face of the collector."""

from __future__ import annotations

import argparse
import logging
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any, Dict

from .keys import default_db_path
from .server import Collector
from .wire import Limits

log = logging.getLogger("isstreamer.collector")


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number of days")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `isstreamer serve` to ``parser``."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8080,
        help="port to listen on, 0 for any free one (default: 8080)",
    )
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"SQLite database (default: {default_db_path()})",
    )
    parser.add_argument(
        "--access-key",
        dest="access_keys",
        action="append",
        default=None,
        metavar="KEY",
        help="access key clients must send; repeatable "
        "(default: a key generated once and kept beside the database)",
    )
    parser.add_argument(
        "--retention-days",
        type=_positive,
        default=None,
        metavar="N",
        help="delete events older than N days (default: keep all)",
    )
    parser.add_argument(
        "--max-connections",
        type=_count,
        default=Limits.max_connections,
        metavar="N",
        help="connections served at once; more are answered 503 with Retry-After "
        f"(default: {Limits.max_connections})",
    )


def run_serve(args: argparse.Namespace) -> int:
    """Serve in the foreground until SIGTERM or SIGINT; returns the exit code."""
    if not logging.getLogger().handlers and not logging.getLogger("isstreamer").handlers:
        logging.basicConfig(
            level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    db = Path(args.db) if getattr(args, "db", None) else default_db_path()
    keys = getattr(args, "access_keys", None)
    try:
        limits = Limits(
            max_connections=getattr(args, "max_connections", None) or Limits.max_connections
        )
        collector = Collector(
            db, args.host, args.port, keys, getattr(args, "retention_days", None), limits
        ).start()
    except (OSError, sqlite3.Error) as exc:
        reason = getattr(exc, "strerror", None) or exc
        print(
            f"isstreamer serve: cannot serve on {args.host}:{args.port}: {reason}",
            file=sys.stderr,
        )
        return 1
    # Handlers before the first line: a script that reads the URL may send SIGTERM at once.
    stop = threading.Event()
    previous: Dict[int, Any] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
        except ValueError:  # not the main thread: the caller handles signals
            pass
    # The first line is the URL alone, so scripts and tests can read the port from it.
    print(f"isstreamer collector listening on {collector.url}", flush=True)
    print(f"  database: {db}")
    if collector.generated_key:
        # The only place a key is ever printed: the user needs it once to configure clients.
        print(
            f"  new access key: {collector.generated_key}"
            f"  (saved in {collector.key_file}, mode 0600)"
        )
    elif collector.key_file:
        print(f"  access key: in {collector.key_file}")
    if collector.reads_open:
        print(f"  dashboard: {collector.url}/  (reads need no key on this machine)")
    else:
        print(
            "  dashboard and read API need the access key: open /#key=<KEY> or send X-IS-AccessKey"
        )
    print("  stop with Ctrl-C", flush=True)

    try:
        stop.wait()
    finally:
        collector.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
    print("isstreamer collector stopped", flush=True)
    return 0
