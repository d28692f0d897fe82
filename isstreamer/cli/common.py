"""What the ``isstreamer`` subcommands share: settings from the global options, opening a
Streamer (with the local collector as the receiver when nothing is configured), and messages
on stderr. Stopping on signals is signals.py's."""

from __future__ import annotations

import argparse
import re
import socket
import sys
from collections.abc import Mapping
from typing import Any

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


def start_local_collector() -> tuple:
    """(api_base, access_key) of the collector on 127.0.0.1:8080, started in-process if needed."""
    try:
        from ..collector import ensure_local_collector
    except ImportError:
        raise ConfigError(
            "no access key is configured and this installation has no local collector; "
            + HOW_TO_CONFIGURE
        ) from None
    try:
        return tuple(ensure_local_collector())
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
    api_base, access_key = start_local_collector()
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
