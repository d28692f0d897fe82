"""``isstreamer relay``: forward bucket streams from Redis to the configured receiver."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
from typing import Any, Callable

from ..errors import ConfigError
from . import options
from .common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, host_bucket_key, say
from .signals import StopSignal

log = logging.getLogger("isstreamer")

FROM_ENV = "ISSTREAMER_RELAY_FROM"
MAX_BATCH = 2000  # entries per read; the Streamer's memory holds about two reads at once


def default_consumer() -> str:
    """host-pid: unique among relays sharing a group, on one machine or many."""
    return f"{socket.gethostname()}-{os.getpid()}"


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "relay",
        parents=[common],
        help="forward bucket streams from Redis (or Redis Cluster) to the receiver",
        description="Read the isstreamer bucket streams of a Redis or Redis Cluster with a "
        "consumer group and deliver every entry to the configured receiver (--api-base, the "
        "access key, the spool), acknowledging an entry only once it was delivered or spooled. "
        "Run several with the same --group to share the work.",
    )
    p.add_argument(
        "--from",
        dest="source",
        default=os.environ.get(FROM_ENV),
        metavar="URL",
        help="redis://, rediss://, redis+cluster://host:port[,host:port...]/ or "
        f"rediss+cluster://; ?prefix=... if the devices use another key prefix "
        f"(env {FROM_ENV}: a password there stays out of ps)",
    )
    p.add_argument(
        "--group",
        default="isstreamer-relay",
        metavar="NAME",
        help="consumer group (default isstreamer-relay; created when missing)",
    )
    p.add_argument(
        "--consumer",
        default=None,
        metavar="NAME",
        help="this relay's name in the group (default host-pid)",
    )
    p.add_argument(
        "--buckets",
        default="*",
        metavar="PATTERN",
        help="only the bucket keys matching this shell pattern (default *)",
    )
    p.add_argument(
        "--batch",
        type=options.at_least_one,
        default=1000,
        metavar="N",
        help=f"entries per read, shared by the streams (default 1000, at most "
        f"{MAX_BATCH}); twice this is the window that can be delivered twice",
    )
    p.add_argument(
        "--block-ms",
        type=options.at_least_one,
        default=2000,
        metavar="MS",
        help="how long an idle read waits for new entries (default 2000)",
    )
    p.add_argument(
        "--claim-idle",
        type=options.positive_seconds,
        default=60.0,
        metavar="SECONDS",
        help="take over another consumer's entries unacknowledged this long (default 60)",
    )
    p.add_argument(
        "--discover-interval",
        type=options.positive_seconds,
        default=5.0,
        metavar="SECONDS",
        help="how often the registry of buckets is read again for new ones (default 5)",
    )
    p.add_argument(
        "--trim",
        action="store_true",
        help="after acknowledging, XTRIM MINID what every group has processed",
    )
    p.add_argument("--once", action="store_true", help="exit once nothing is left to read")
    p.add_argument(
        "--status",
        action="store_true",
        help="print length, pending and lag per stream for the group, then exit",
    )
    p.add_argument(
        "--deadline",
        type=options.positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="at SIGTERM/SIGINT, time to deliver or spool the last read (default 10)",
    )
    p.add_argument(
        "--stats-bucket",
        default="",
        metavar="KEY",
        help="also log the relay's own metrics as events to this bucket",
    )
    p.add_argument(
        "--stats-interval",
        type=options.positive_seconds,
        default=60.0,
        metavar="SECONDS",
        help="how often --stats-bucket gets them (default 60)",
    )
    p.set_defaults(func=run_relay)


def _options(args: argparse.Namespace) -> Any:
    from ..relay import RelayOptions

    if not args.source:
        raise ConfigError(f"relay needs --from URL (or {FROM_ENV}): the Redis to read")
    if not 1 <= args.batch <= MAX_BATCH:
        raise ConfigError(f"--batch must be 1 to {MAX_BATCH}, not {args.batch}")
    return RelayOptions(
        batch=args.batch,
        block_ms=args.block_ms,
        claim_idle_s=args.claim_idle,
        trim=args.trim,
        deadline_s=args.deadline,
        discover_interval_s=args.discover_interval,
        stats_bucket=args.stats_bucket,
        stats_interval_s=args.stats_interval,
    )


def run_relay(args: argparse.Namespace) -> int:
    try:
        from ..relay import Relay
        from ..relay_source import Source, connect, source_address
    except ImportError as exc:
        say(args, str(exc), always=True)
        return EXIT_CONFIG
    options = _options(args)
    try:
        make_client, prefix, cluster = connect(args.source, block_ms=options.block_ms)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    consumer = args.consumer or default_consumer()
    address = source_address(args.source)
    if args.status:
        return _print_status(
            Source(
                make_client(),
                prefix=prefix,
                group=args.group,
                consumer=consumer,
                pattern=args.buckets,
                cluster=cluster,
            )
        )
    from .common import open_streamer

    # The receiver, key and spool come from the usual settings; the bucket is set per stream.
    streamer = open_streamer(
        args, default_bucket_key=host_bucket_key("relay"), buffer_size=options.batch
    )
    client = relay = None
    try:
        with StopSignal() as stop:
            client = _first_client(make_client, address, stop)
            if client is None:  # stopped before Redis ever answered: nothing was read
                return EXIT_OK
            source = Source(
                client,
                prefix=prefix,
                group=args.group,
                consumer=consumer,
                pattern=args.buckets,
                cluster=cluster,
            )
            source.address = address
            relay = Relay(source, streamer, options, stop=stop)
            if hasattr(signal, "SIGUSR1"):
                stop.on(signal.SIGUSR1, _reporter(relay))
            say(
                args,
                f"relaying {address} group {args.group} as {consumer} to {streamer.StreamApiBase}",
            )
            done = relay.run(once=args.once)
    finally:
        streamer.close(options.deadline_s)
        if client is not None:
            client.close()
    counts = relay.counts
    say(
        args,
        f"forwarded {counts['forwarded']}, acknowledged {counts['acknowledged']}, "
        f"invalid {counts['invalid']}, claimed {counts['claimed']}, trimmed {counts['trimmed']}",
    )
    return EXIT_OK if done else EXIT_FAILED


def _reporter(relay: Any) -> Callable[[], None]:
    def report() -> None:
        relay.report_requested = True  # logged by the relay's loop, which owns its counters

    return report


def _first_client(make_client: Any, address: str, stop: StopSignal) -> Any:
    """A client once Redis answers (a cluster client needs the slot map); None if stopped."""
    import redis

    from ..relay import refused_credentials

    wait_s = 0.1
    while not stop.is_set():
        try:
            return make_client()
        except (redis.RedisError, OSError) as exc:
            if refused_credentials(exc):
                raise ConfigError(
                    f"redis {address} refused the credentials: "
                    f"{type(exc).__name__}: {str(exc)[:200]}"
                ) from None
            log.warning(
                "redis %s: %s: %s (trying again in %.1f s)",
                address,
                type(exc).__name__,
                str(exc).split("\n")[0][:200],
                wait_s,
            )
        stop.wait(wait_s)
        wait_s = min(wait_s * 2, 5.0)
    return None


def _print_status(source: Any) -> int:
    source.discover(create=False)
    rows = source.status()
    for row in rows:
        print(json.dumps(row, sort_keys=True))
    if not rows:
        print(f"no bucket streams under {source.prefix}", file=sys.stderr)
    return EXIT_OK
