"""``isstreamer serve``: the local collector in the foreground until SIGTERM or SIGINT.

The collector (its server, store and dashboard) is imported only when serve runs, or when
its help shows the collector's defaults: ``isstreamer --help`` and every other command never
load it.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
from pathlib import Path
from typing import Any, Callable

from .. import journald
from ..sdnotify import notify
from . import options
from .common import EXIT_FAILED, EXIT_OK
from .signals import StopSignal

log = logging.getLogger("isstreamer.collector")


class _CollectorDefault:
    """A default read from the collector when it is needed (``--help`` formats it with str)."""

    def __init__(self, read: Callable[[], Any]) -> None:
        self.read = read

    def __str__(self) -> str:
        return str(self.read())


def _default_db() -> Path:
    from ..collector.keys import default_db_path

    return default_db_path()


def _default_max_connections() -> int:
    from ..collector.wire import Limits

    return Limits.max_connections


def _resolved(value: Any) -> Any:
    return value.read() if isinstance(value, _CollectorDefault) else value


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "serve",
        parents=[common],
        help="run the local collector: ingest API, SQLite store, dashboard",
    )
    add_serve_arguments(p)
    p.set_defaults(func=run_serve)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `isstreamer serve` to ``parser``."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    parser.add_argument(
        "--port",
        type=options.port,
        default=8080,
        help="port to listen on, 0 for any free one (default: 8080)",
    )
    parser.add_argument(
        "--db",
        type=Path,
        default=_CollectorDefault(_default_db),
        metavar="PATH",
        help="SQLite database (default: %(default)s)",
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
        type=options.positive_days,
        default=None,
        metavar="N",
        help="delete events older than N days (default: keep all)",
    )
    parser.add_argument(
        "--max-connections",
        type=options.at_least_one,
        default=_CollectorDefault(_default_max_connections),
        metavar="N",
        help="connections served at once; more are answered 503 with Retry-After "
        "(default: %(default)s)",
    )


def run_serve(args: argparse.Namespace) -> int:
    """Serve in the foreground until SIGTERM or SIGINT; returns the exit code."""
    from ..collector.server import Collector
    from ..collector.wire import Limits

    if not logging.getLogger().handlers and not logging.getLogger("isstreamer").handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            journald.formatter_for(sys.stderr, "%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        logging.basicConfig(level=logging.WARNING, handlers=[handler])
    db = Path(_resolved(getattr(args, "db", None)) or _default_db())
    # A global --access-key before "serve" names the key clients must send, as after it.
    keys = getattr(args, "access_keys", None) or (
        [args.access_key] if getattr(args, "access_key", None) else None
    )
    try:
        limits = Limits(
            max_connections=_resolved(getattr(args, "max_connections", None))
            or Limits.max_connections
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
        return EXIT_FAILED
    try:
        # Handlers before the first line: a script that reads the URL may send SIGTERM at once.
        with StopSignal() as stop:
            _announce(collector, db)
            notify("READY=1")  # Type=notify: units ordered after this one may start now
            stop.wait()
            notify("STOPPING=1")
    finally:
        collector.stop()
    print("isstreamer collector stopped", flush=True)
    return EXIT_OK


def _announce(collector: Any, db: Path) -> None:
    # The first line is the URL alone, so scripts and tests can read the port from it.
    print(f"isstreamer collector listening on {collector.url}", flush=True)
    print(f"  database: {db}")
    if collector.generated_key and journald.is_journal(sys.stdout):
        # A service's output is kept in the journal, readable by more users than the key file.
        print(f"  new access key: saved in {collector.key_file}, mode 0600")
    elif collector.generated_key:
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
