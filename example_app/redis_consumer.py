#!/usr/bin/env python3
"""Read a fleet's telemetry from Redis Streams with a consumer group.

Devices log with ``Streamer(api_base="redis://host:6379/0", bucket_key="pi-kitchen")`` and
every event becomes one entry of the stream ``isstreamer:pi-kitchen`` with the fields
``key``, ``value`` (JSON text) and ``epoch``. Run this script once per worker process; all
processes started with the same ``--group`` share the work, each entry goes to exactly one
of them, and entries a dead worker had taken are re-claimed by the others.

    pip install 'isstreamer-agent[redis]'
    REDIS_URL=redis://127.0.0.1:6379/0 python redis_consumer.py --bucket pi-kitchen
    python redis_consumer.py --url redis://:password@host:6379/0 --bucket pi-kitchen \\
        --group dashboards --consumer "$(hostname)-1"

Press Ctrl-C to stop; ``--once`` stops by itself when nothing is left to read.
``isstreamer relay`` is this loop built in, forwarding to any receiver.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from datetime import datetime, timezone
from typing import Any, Optional

try:
    import redis
except ImportError:
    sys.exit("this example needs redis-py: pip install 'isstreamer-agent[redis]'")

Entry = tuple[str, Optional[dict[str, str]]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="redis:// or rediss:// URL (env REDIS_URL)",
    )
    parser.add_argument(
        "--bucket",
        default=os.environ.get("ISSTREAMER_BUCKET_KEY", ""),
        help="bucket key to read (env ISSTREAMER_BUCKET_KEY); "
        "empty: list the known buckets and exit",
    )
    parser.add_argument("--prefix", default="isstreamer:", help="the sink's key prefix")
    parser.add_argument("--group", default="isstreamer-consumers", help="consumer group name")
    parser.add_argument(
        "--consumer",
        default=f"{socket.gethostname()}-{os.getpid()}",
        help="this worker's name, unique within the group",
    )
    parser.add_argument(
        "--from-start",
        action="store_true",
        help="a new group starts with the oldest entry instead of new ones",
    )
    parser.add_argument("--count", type=int, default=500, help="entries per read")
    parser.add_argument("--block", type=int, default=5000, help="ms to wait for new entries")
    parser.add_argument(
        "--claim-idle",
        type=int,
        default=60_000,
        help="ms after which another consumer's unacknowledged entry is taken over",
    )
    parser.add_argument("--once", action="store_true", help="exit when nothing is left to read")
    return parser.parse_args(argv)


def handle(bucket: str, entry_id: str, fields: dict[str, str]) -> None:
    """Do the real work here: store, aggregate, alert... This one prints a line per event."""
    value: Any = json.loads(fields["value"])  # 21.5, true, "on": JSON keeps the type
    when = datetime.fromtimestamp(float(fields["epoch"]), tz=timezone.utc)
    print(
        f"{bucket} {when.isoformat()} {fields['key']}={value!r} ({type(value).__name__}) "
        f"[{entry_id}]",
        flush=True,
    )


def process(client: Any, args: argparse.Namespace, stream: str, entries: list[Entry]) -> int:
    """Handle then acknowledge each entry; an entry is only XACKed once it is handled."""
    done = []
    for entry_id, fields in entries:
        if fields is None:
            # The entry was trimmed away (MAXLEN) while it was pending: nothing to handle.
            done.append(entry_id)
            continue
        handle(args.bucket, entry_id, fields)
        done.append(entry_id)
    if done:
        # Acknowledge in one call per read; if this worker dies before XACK, the entries
        # stay pending and another worker claims them (so handle() must tolerate a replay).
        client.xack(stream, args.group, *done)
    return len(done)


def create_group(client: Any, stream: str, group: str, from_start: bool) -> None:
    """XGROUP CREATE ... MKSTREAM; the group may exist already (BUSYGROUP)."""
    try:
        client.xgroup_create(stream, group, id="0" if from_start else "$", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def claim_abandoned(client: Any, args: argparse.Namespace, stream: str) -> int:
    """XAUTOCLAIM: take over entries another consumer read but did not ack for a while."""
    handled, start = 0, "0-0"
    while True:
        reply = client.xautoclaim(
            stream, args.group, args.consumer, args.claim_idle, start_id=start, count=args.count
        )
        start, entries = reply[0], reply[1]  # Redis 7 adds a third item: deleted ids
        handled += process(client, args, stream, entries)
        if start in ("0-0", b"0-0"):
            return handled


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The socket must wait longer than a blocking read: with redis-py's default socket
    # timeout (5 s in redis-py 8) every idle XREADGROUP BLOCK 5000 ended in a TimeoutError.
    client = redis.Redis.from_url(
        args.url, decode_responses=True, socket_timeout=args.block / 1000 + 10
    )
    if not args.bucket:
        for key, name in sorted(client.hgetall(args.prefix + "buckets").items()):
            print(f"{key}\t{name}")
        return 0
    stream = args.prefix + args.bucket
    create_group(client, stream, args.group, args.from_start)

    # Entries this consumer name read before a crash are still pending for it: id "0"
    # re-delivers them (without blocking) before any new ones.
    while True:
        reply = client.xreadgroup(args.group, args.consumer, {stream: "0"}, count=args.count)
        if not reply or not reply[0][1] or not process(client, args, stream, reply[0][1]):
            break

    try:
        while True:
            claimed = claim_abandoned(client, args, stream)
            # ">" means entries never delivered to anyone in this group.
            reply = client.xreadgroup(
                args.group, args.consumer, {stream: ">"}, count=args.count, block=args.block
            )
            read = sum(process(client, args, stream, entries) for _, entries in reply or [])
            if args.once and not read and not claimed:
                return 0
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
