"""The ``isstreamer`` command: global options, subcommands and exit statuses.

Exit 0 when done, 1 when something failed (the message says what), 2 when the configuration
cannot work or the command line is wrong, 75 when events were not delivered yet but are
kept in the spool (log, pipe, replay, metrics --once). Each subcommand lives in a module of
this package.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .. import journald
from .._version import __version__
from ..errors import ConfigError
from . import completion, config, metrics, relay, replay, send, serve, spool, status
from .common import EXIT_CONFIG, EXIT_FAILED, say

log = logging.getLogger("isstreamer")

EXAMPLES = """\
examples:
  isstreamer config init                      # store your access key (hidden prompt, mode 0600)
  isstreamer log temperature 21.5             # one event; exit 0 once delivered or spooled
  some_sensor | isstreamer pipe               # lines: key,value  key=value  key,value,epoch  {json}
  isstreamer metrics                          # system metrics every 10 s to bucket metrics-<host>
  isstreamer replay                           # send what is waiting in the spool now
  isstreamer spool                            # what is waiting, and why
  isstreamer status --json                    # the running agent's counters and the spool
  isstreamer metrics --print --once           # one sample on stdout, nothing sent
  isstreamer relay --from redis://host:6379/0 # forward a fleet's Redis streams to the receiver

The access key comes from ISSTREAMER_ACCESS_KEY or an ini file (isstreamer config init). With
neither a key nor an api_base, log, pipe and metrics use the local collector (isstreamer serve).

exit status:
  0   done: every event delivered
  1   failed: events lost, the access key refused (401/403), or another error (see stderr)
  2   bad command line or configuration
  75  not delivered yet: kept in the spool, sent by the next run or `isstreamer replay`
"""


def _global_options(parser: argparse.ArgumentParser, access_key: bool = True) -> None:
    parser.add_argument(
        "--config",
        metavar="INI",
        help="the ini file to read (default: $ISSTREAMER_CONFIG, "
        "./isstreamer.ini, ~/isstreamer.ini, then ~/.config/isstreamer/isstreamer.ini)",
    )
    if access_key:
        parser.add_argument(
            "--access-key",
            metavar="KEY",
            help="the Initial State access key; better kept in the ini file (isstreamer config "
            "init) or ISSTREAMER_ACCESS_KEY: a key on the command line is visible in ps "
            "and in your shell history",
        )
    parser.add_argument(
        "--bucket-key", metavar="KEY", help="the bucket to stream to (ISSTREAMER_BUCKET_KEY)"
    )
    parser.add_argument(
        "--bucket-name", metavar="NAME", help="its display name (ISSTREAMER_BUCKET_NAME)"
    )
    parser.add_argument(
        "--api-base",
        metavar="URL",
        help="receiver URL (ISSTREAMER_API_BASE; default https://groker.init.st)",
    )
    parser.add_argument(
        "--spill-dir", metavar="DIR", help="where undeliverable events wait (ISSTREAMER_SPILL_DIR)"
    )
    parser.add_argument(
        "--collector-port",
        type=int,
        metavar="PORT",
        help="port of the local collector used when no access key is configured "
        "(ISSTREAMER_COLLECTOR_PORT; default 8080, or a free one if another program has 8080)",
    )
    parser.add_argument("-v", "--verbose", action="count", help="more messages (-vv for debugging)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors")


def _common(access_key: bool = True) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    _global_options(common, access_key)
    return common


def build_parser() -> argparse.ArgumentParser:
    # The global options are accepted before and after the subcommand; after it they are
    # SUPPRESSed when absent, so they never overwrite what was given before it.
    common = _common()
    parser = argparse.ArgumentParser(
        prog="isstreamer",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Stream telemetry to Initial State or a local collector.",
    )
    _global_options(parser)
    parser.set_defaults(verbose=0, quiet=False, func=None)
    parser.add_argument("--version", action="version", version=f"isstreamer {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    send.add_parsers(sub, common)
    metrics.add_parsers(sub, common)
    replay.add_parsers(sub, common)
    spool.add_parsers(sub, common)
    status.add_parsers(sub, common)
    config.add_parsers(sub, common)
    relay.add_parsers(sub, common)
    # serve has an --access-key of its own (the keys clients must send), repeatable.
    serve.add_parsers(sub, _common(access_key=False))
    completion.add_parsers(sub, common)
    return parser


_handler: logging.Handler | None = None  # the one setup_logging() installed


def setup_logging(verbose: int, quiet: bool) -> None:
    """The command's log lines on stderr: the one place their level and format are set.

    Called again (main() run twice in one process), it replaces its own handler.
    """
    global _handler
    level = (
        logging.ERROR
        if quiet
        else (logging.WARNING, logging.INFO)[verbose]
        if verbose < 2
        else logging.DEBUG
    )
    log.setLevel(level)
    if _handler is not None:
        log.removeHandler(_handler)
    _handler = logging.StreamHandler(sys.stderr)
    # Under systemd each line carries its journald priority (journalctl -p warning).
    _handler.setFormatter(
        journald.formatter_for(sys.stderr, "isstreamer: %(levelname)s: %(message)s")
    )
    log.addHandler(_handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_CONFIG
    if args.func is None:
        parser.print_help(sys.stderr)
        return EXIT_CONFIG
    args.verbose = args.verbose or 0
    setup_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        say(args, str(exc), always=True)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `isstreamer spool list -l | head`
        # stdout is gone: point it at /dev/null, or the final flush at exit fails once more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except Exception as exc:  # anything else: one line, the traceback only when asked for
        if args.verbose >= 2:
            log.exception("unexpected error")
        say(
            args,
            f"error: {exc if isinstance(exc, OSError) else f'{type(exc).__name__}: {exc}'}",
            always=True,
        )
        return EXIT_FAILED
