"""What the ``isstreamer`` subcommands share: settings from the global options, opening a
Streamer (with the local collector as the receiver when nothing is configured), and messages
on stderr. Stopping on signals is signals.py's."""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..config import Settings, load_settings
from ..errors import ConfigError
from ..failures import is_refused_key, needs_a_fix
from ..model import MAX_BUCKET_KEY_CHARS
from ..streamer import Streamer
from . import options

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
# Not delivered yet, safe in the spool: sysexits.h's EX_TEMPFAIL ("a temporary failure; the
# user is invited to retry later"), which mail programs and cron wrappers already know.
EXIT_SPOOLED = 75
SETTING_OPTIONS = ("access_key", "bucket_key", "bucket_name", "api_base", "spill_dir")
HOW_TO_CONFIGURE = "to stream to Initial State instead, run: isstreamer config init"
COLLECTOR_PORT_ENV = "ISSTREAMER_COLLECTOR_PORT"
DEFAULT_COLLECTOR_PORT = 8080


def say(args: argparse.Namespace, message: str, *, always: bool = False) -> None:
    """One line on stderr, prefixed with the program name; -q silences all but errors."""
    if always or not getattr(args, "quiet", False):
        print(f"isstreamer: {message}", file=sys.stderr, flush=True)


def add_deadline_argument(parser: argparse.ArgumentParser, when: str) -> None:
    """--deadline: how long log, pipe and metrics try at the end before spilling the rest."""
    parser.add_argument(
        "--deadline",
        type=options.seconds,
        default=10.0,
        metavar="SECONDS",
        help=f"{when}, how long to try before keeping the rest in the spool (default 10)",
    )


def delivery_status(args: argparse.Namespace, stats: Mapping[str, Any]) -> int:
    """The exit status of a run that logged events, from its closed Streamer's stats():
    0 all delivered, 75 some only kept in the spool, 1 lost, or refused in a way waiting
    cannot fix (the access key, an address that is no events API)."""
    lost = stats["dropped"] + stats["quarantined"]
    waiting, error = stats["on_disk"], stats["last_error"]
    if lost:
        say(args, f"{lost} event(s) lost: {error or 'see the messages above'}", always=True)
        return EXIT_FAILED
    if waiting and needs_a_fix(error):
        fix = (
            "set the right key (isstreamer config init)"
            if is_refused_key(error)
            else ("correct api_base (isstreamer config shows it)")
        )
        say(
            args,
            f"{error}; {waiting} event(s) kept in the spool: {fix}, then run `isstreamer replay`",
            always=True,
        )
        return EXIT_FAILED
    if waiting:
        why = f" ({error})" if error else ""
        say(
            args,
            f"{waiting} event(s) not delivered yet{why}; kept in the spool and sent by the "
            "next run or `isstreamer replay`",
        )
        return EXIT_SPOOLED
    return EXIT_OK


def setting_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The global options that are settings, as load_settings() arguments."""
    return {name: getattr(args, name, None) for name in SETTING_OPTIONS}


def load(args: argparse.Namespace) -> Settings:
    return load_settings(setting_arguments(args), getattr(args, "config", None))


def host_bucket_key(prefix: str) -> str:
    """``<prefix>-<hostname>``: stable across restarts, so one device keeps one bucket."""
    host = re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()).strip("-.") or "localhost"
    return f"{prefix}-{host}"[:MAX_BUCKET_KEY_CHARS]


def wants_local_collector(settings: Settings) -> bool:
    """Neither an access key nor an api_base anywhere: a fresh machine."""
    return (
        not settings.offline
        and not settings.access_key
        and settings.sources.get("api_base") == "default"
    )


def collector_port(args: argparse.Namespace) -> tuple[int, bool]:
    """(port, given) of the embedded default: --collector-port, ISSTREAMER_COLLECTOR_PORT, 8080."""
    given = getattr(args, "collector_port", None) or os.environ.get(COLLECTOR_PORT_ENV, "")
    if not given:
        return DEFAULT_COLLECTOR_PORT, False
    try:
        port = int(given)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ConfigError(
            f"the collector port must be a number from 1 to 65535 (--collector-port or "
            f"{COLLECTOR_PORT_ENV}); got {given!r}"
        )
    return port, True


def start_local_collector(port: int | None = None) -> tuple:
    """(api_base, access_key, in this process) of the local collector, started if needed.

    Without ``port``: 8080, or a free port when another program holds 8080. A port the user
    chose is used or the start fails."""
    try:
        from ..collector import local_collector
    except ImportError:
        raise ConfigError(
            "no access key is configured and this installation has no local collector; "
            + HOW_TO_CONFIGURE
        ) from None
    try:
        if port is None:
            return tuple(local_collector(port=DEFAULT_COLLECTOR_PORT, fallback=True))
        return tuple(local_collector(port=port))
    except ConfigError:
        raise
    except Exception as exc:  # port taken by something else, unwritable data dir, ...
        raise ConfigError(
            f"no access key is configured and the local collector could not start "
            f"({exc}); {HOW_TO_CONFIGURE}"
        ) from None


def receiver(args: argparse.Namespace, settings: Settings) -> dict[str, str]:
    """Streamer/replay keyword arguments for the local collector when nothing is configured."""
    if not wants_local_collector(settings):
        return {}
    port, given = collector_port(args)
    api_base, access_key, *started = (
        start_local_collector(port) if given else start_local_collector()
    )
    # A collector started here stops listening when this process exits: only the commands
    # that run until stopped (metrics and relay without --once) keep it up, so only then (or
    # when another process serves it) is "open <url>" true. log, pipe and replay say where
    # the data went and how to look at it.
    if started and started[0] and getattr(args, "once", True):
        from ..collector import default_db_path

        used = urlsplit(api_base).port or DEFAULT_COLLECTOR_PORT
        serve = "isstreamer serve" + (f" --port {used}" if used != DEFAULT_COLLECTOR_PORT else "")
        say(
            args,
            f"no access key configured, so events go to the local collector's database "
            f"{default_db_path()}; to see them, run `{serve}` and open the URL it prints "
            f"({HOW_TO_CONFIGURE})",
        )
    else:
        say(
            args,
            f"no access key configured, so events go to the local collector: open {api_base} "
            f"({HOW_TO_CONFIGURE})",
        )
    return {"api_base": api_base, "access_key": access_key}


def open_streamer(
    args: argparse.Namespace,
    *,
    default_bucket_key: str,
    default_bucket_name: str = "",
    buffer_size: int | None = None,
) -> Streamer:
    """A Streamer from the global options, the environment and the ini file, in that order."""
    settings = load(args)
    kwargs: dict[str, Any] = {
        "access_key": args.access_key or "",
        "bucket_key": args.bucket_key or "",
        "bucket_name": args.bucket_name or "",
        "api_base": args.api_base,
        "spill_dir": args.spill_dir,
        "ini_file_location": args.config,
    }
    kwargs.update(receiver(args, settings))
    if not settings.bucket_key:
        # Streamer would make a new uuid bucket per run: a cron job would fill the account.
        kwargs["bucket_key"] = default_bucket_key
        if not settings.bucket_name and default_bucket_name:
            kwargs["bucket_name"] = default_bucket_name
    if buffer_size and settings.sources.get("buffer_size") == "default":
        kwargs["buffer_size"] = buffer_size
    return Streamer(**kwargs)
