"""``isstreamer spool``: what is waiting on disk and why, one file in detail, and purging."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any

from ..spool import QUARANTINE, CorruptSpillFile, Spool, event_count, listing
from .common import EXIT_FAILED, EXIT_OK, load, say


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "spool",
        parents=[common],
        help="list, show or purge spill files and the quarantine",
        description="Without an action: a summary of the spool and the quarantine.",
    )
    p.set_defaults(func=run_list, quarantine=False, long=False)
    actions = p.add_subparsers(title="actions", metavar="ACTION")
    ls = actions.add_parser("list", parents=[common], help="summary, or one line per file with -l")
    ls.add_argument("-l", "--long", action="store_true", help="one line per file")
    ls.add_argument(
        "--quarantine", action="store_true", help="list the quarantine, with the reasons"
    )
    ls.set_defaults(func=run_list)
    show = actions.add_parser(
        "show", parents=[common], help="one spill file's details and first events"
    )
    show.add_argument("file", help="a file name from `spool list -l`, or a path")
    show.add_argument(
        "--events", type=int, default=10, metavar="N", help="events to print (default 10)"
    )
    show.add_argument("--json", action="store_true", help="print the file's JSON as it is")
    show.set_defaults(func=run_show)
    purge = actions.add_parser(
        "purge", parents=[common], help="delete spill files (asks first on a terminal)"
    )
    purge.add_argument("-y", "--yes", action="store_true", help="do not ask")
    which = purge.add_mutually_exclusive_group()
    which.add_argument("--quarantine", action="store_true", help="purge the quarantine instead")
    which.add_argument("--all", action="store_true", help="purge spill files and the quarantine")
    purge.set_defaults(func=run_purge)


def _spool(args: argparse.Namespace) -> Spool:
    return Spool(str(load(args).spill_dir))


def _utc(epoch: float, fmt: str = "%Y-%m-%d %H:%M:%S UTC") -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).strftime(fmt)


def _created(path: Path) -> str:
    created = listing.created_at(path)
    return "?" if created is None else _utc(created)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def run_list(args: argparse.Namespace) -> int:
    spool = _spool(args)
    files = spool.quarantined() if args.quarantine else spool.files()
    where = spool.directory / QUARANTINE if args.quarantine else spool.directory
    events, size = listing.events_in(files), sum(listing.size_bytes(p) for p in files)
    print(f"{'quarantine' if args.quarantine else 'spool'}: {where}")
    print(f"  {_count(len(files), 'file')}, {_count(events, 'event')}, {_size(size)}")
    if files:
        print(f"  oldest: {_created(files[0])}")
        note = listing.reason_of(files[-1]) if args.quarantine else listing.details(files[-1])[1]
        print(f"  {'last reason' if args.quarantine else 'last error'}: {note or '(none)'}")
    if args.long:
        for path in files:
            bucket, error = listing.details(path)
            note = listing.reason_of(path) if args.quarantine else error
            count = event_count(path)
            print(f"{path.name}  {count:>6} events  {_created(path)}  bucket {bucket}  {note}")
    if not args.quarantine:
        busy = spool.usage()[0] - len(files)
        if busy > 0:
            print(f"  {busy} more being sent by a running process")
        held = spool.quarantined()
        if held:
            print(
                f"quarantine: {_count(len(held), 'file')}, "
                f"{_count(listing.events_in(held), 'event')} "
                "(isstreamer spool list --quarantine)"
            )
    return EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    spool = _spool(args)
    path = listing.find(spool, args.file)
    if path is None:
        say(
            args, f"no spill file {args.file!r} in {spool.directory} or its quarantine", always=True
        )
        return EXIT_FAILED
    if args.json:
        try:
            print(json.dumps(listing.raw_json(path), indent=2))
        except (OSError, ValueError) as exc:
            say(args, f"{path} cannot be read as JSON: {exc}", always=True)
            return EXIT_FAILED
        return EXIT_OK
    try:
        batch, total = listing.peek(path, max(0, args.events))
    except CorruptSpillFile as exc:
        say(args, f"{path} cannot be read as a spill file: {exc}", always=True)
        return EXIT_FAILED
    created = _utc(batch.created)
    rows = [
        ("file", str(path)),
        ("id", batch.id),
        ("created", created),
        ("receiver", batch.sink),
        ("bucket", f"{batch.bucket.key} ({batch.bucket.name})"),
        ("events", str(total)),
        ("attempts", str(batch.attempts)),
        ("last error", batch.last_error or "(none)"),
    ]
    if path.parent.name == QUARANTINE:
        rows.append(("quarantined", listing.reason_of(path) or "(no reason recorded)"))
    for label, text in rows:
        print(f"{label:<12} {text}")
    for key, value, epoch in batch.events:
        stamp = _utc(epoch, "%Y-%m-%d %H:%M:%S.%f")[:-3]
        print(f"  {stamp}Z  {key} = {json.dumps(value)}")
    if total > args.events > 0:
        print(f"  ... {total - args.events} more")
    return EXIT_OK


def run_purge(args: argparse.Namespace) -> int:
    spool = _spool(args)
    files = [] if args.quarantine else spool.files()
    if args.quarantine or args.all:
        files += spool.quarantined()
    if not files:
        say(args, f"nothing to purge in {spool.directory}")
        return EXIT_OK
    events = listing.events_in(files)
    what = f"{_count(len(files), 'file')} ({_count(events, 'event')}) in {spool.directory}"
    if not args.yes:
        if not sys.stdin.isatty():
            say(args, f"not deleting {what} without --yes (no terminal to ask on)", always=True)
            return EXIT_FAILED
        sys.stderr.write(f"Delete {what}? They can never be sent. [y/N] ")
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            say(args, "nothing deleted", always=True)
            return EXIT_FAILED
    listing.purge(files)
    say(args, f"deleted {what}")
    return EXIT_OK
