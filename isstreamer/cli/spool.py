"""``isstreamer spool``: what is waiting on disk and why, one file in detail, and purging."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any

from ..spool import QUARANTINE, CorruptSpillFile, Spool, event_count, listing
from . import options
from .common import EXIT_FAILED, EXIT_OK, load, say


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "spool",
        parents=[common],
        help="list, show or purge spill files and the quarantine",
        description="Without an action: a summary of the spool and the quarantine.",
    )
    p.add_argument("--json", action="store_true", help="the summary as JSON")
    p.set_defaults(func=run_list, quarantine=False, long=False, json=False)
    actions = p.add_subparsers(title="actions", metavar="ACTION")
    ls = actions.add_parser("list", parents=[common], help="summary, or one line per file with -l")
    ls.add_argument("-l", "--long", action="store_true", help="one line per file")
    ls.add_argument(
        "--quarantine", action="store_true", help="list the quarantine, with the reasons"
    )
    # SUPPRESS: `spool --json list` keeps the --json given before the action.
    ls.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="as JSON")
    ls.set_defaults(func=run_list)
    show = actions.add_parser(
        "show", parents=[common], help="one spill file's details and first events"
    )
    show.add_argument("file", help="a file name from `spool list -l`, or a path")
    show.add_argument(
        "--events", type=options.count, default=10, metavar="N", help="events to print (default 10)"
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


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def summary(spool: Spool, quarantine: bool = False, long: bool = False) -> dict[str, Any]:
    """What is waiting (or quarantined), as the data both outputs of `spool list` print."""
    files = spool.quarantined() if quarantine else spool.files()
    out: dict[str, Any] = {
        "directory": str(spool.directory / QUARANTINE if quarantine else spool.directory),
        "files": len(files),
        "events": listing.events_in(files),
        "bytes": sum(listing.size_bytes(p) for p in files),
        "oldest_created_epoch": listing.created_at(files[0]) if files else None,
    }
    if quarantine:
        out["last_reason"] = listing.reason_of(files[-1]) if files else ""
    else:
        out["last_error"] = listing.details(files[-1])[1] if files else ""
        out["being_sent"] = max(0, spool.usage()[0] - len(files))  # claimed by a process
        held = spool.quarantined()
        out["quarantine"] = {"files": len(held), "events": listing.events_in(held)}
    if long:
        out["entries"] = [_entry(path, quarantine) for path in files]
    return out


def _entry(path: Path, quarantine: bool) -> dict[str, Any]:
    bucket, error = listing.details(path)
    return {
        "name": path.name,
        "events": event_count(path),
        "created_epoch": listing.created_at(path),
        "bucket": bucket,
        "note": listing.reason_of(path) if quarantine else error,
    }


def print_summary(info: dict[str, Any], quarantine: bool = False) -> None:
    """The text form of summary()."""
    print(f"{'quarantine' if quarantine else 'spool'}: {info['directory']}")
    print(
        f"  {_count(info['files'], 'file')}, {_count(info['events'], 'event')}, "
        f"{_size(info['bytes'])}"
    )
    if info["files"]:
        created = info["oldest_created_epoch"]
        print(f"  oldest: {'?' if created is None else _utc(created)}")
        label, note = ("last reason", "last_reason") if quarantine else ("last error", "last_error")
        print(f"  {label}: {info[note] or '(none)'}")
    for entry in info.get("entries", ()):
        created = "?" if entry["created_epoch"] is None else _utc(entry["created_epoch"])
        print(
            f"{entry['name']}  {entry['events']:>6} events  {created}  "
            f"bucket {entry['bucket']}  {entry['note']}"
        )
    if not quarantine:
        if info["being_sent"]:
            print(f"  {info['being_sent']} more being sent by a running process")
        held = info["quarantine"]
        if held["files"]:
            print(
                f"quarantine: {_count(held['files'], 'file')}, "
                f"{_count(held['events'], 'event')} (isstreamer spool list --quarantine)"
            )


def run_list(args: argparse.Namespace) -> int:
    info = summary(_spool(args), args.quarantine, args.long)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print_summary(info, args.quarantine)
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
