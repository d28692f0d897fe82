"""``isstreamer spool``: what is waiting on disk and why, one file in detail, and purging."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..spool import QUARANTINE, CorruptSpillFile, Spool, event_count
from ..spool.names import created_from_name
from ..spool.quarantine import reason_of
from ..spool.safe_io import open_regular, read_fd
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
    return Spool(Path(os.path.expanduser(str(load(args).spill_dir))))


def _utc(epoch: float, fmt: str = "%Y-%m-%d %H:%M:%S UTC") -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).strftime(fmt)


def _created(path: Path) -> str:
    created = created_from_name(path.name)  # for people: the order is the sequence in the name
    if created is None:
        try:
            created = os.lstat(path).st_mtime
        except OSError:
            return "?"
    return _utc(created)


def _bytes(path: Path) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _details(spool: Spool, path: Path) -> tuple[str, str]:
    """(bucket, last error) of one file, or a note that it cannot be read."""
    try:
        batch, _ = spool.peek(path, 0)  # streams the file: bounded memory, never a FIFO
    except CorruptSpillFile as exc:
        return "?", f"unreadable: {exc}"
    return batch.bucket.key, batch.last_error


def run_list(args: argparse.Namespace) -> int:
    spool = _spool(args)
    files = spool.quarantined() if args.quarantine else spool.files()
    where = spool.directory / QUARANTINE if args.quarantine else spool.directory
    events, size = (
        sum(event_count(p) for p in files),
        sum(_bytes(p) for p in files),
    )
    print(f"{'quarantine' if args.quarantine else 'spool'}: {where}")
    print(f"  {_count(len(files), 'file')}, {_count(events, 'event')}, {_size(size)}")
    if files:
        print(f"  oldest: {_created(files[0])}")
        note = reason_of(files[-1]) if args.quarantine else _details(spool, files[-1])[1]
        print(f"  {'last reason' if args.quarantine else 'last error'}: {note or '(none)'}")
    if args.long:
        for path in files:
            bucket, error = _details(spool, path)
            note = reason_of(path) if args.quarantine else error
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
                f"{_count(sum(event_count(p) for p in held), 'event')} "
                "(isstreamer spool list --quarantine)"
            )
    return EXIT_OK


def _find(spool: Spool, name: str) -> Path | None:
    for candidate in (
        Path(name).expanduser(),
        spool.directory / name,
        spool.directory / QUARANTINE / name,
    ):
        if os.path.lexists(candidate):  # show says why when it is not a regular file
            return candidate
    return None


def run_show(args: argparse.Namespace) -> int:
    spool = _spool(args)
    path = _find(spool, args.file)
    if path is None:
        say(
            args, f"no spill file {args.file!r} in {spool.directory} or its quarantine", always=True
        )
        return EXIT_FAILED
    if args.json:
        try:
            fd = open_regular(path)  # never through a symlink, never blocking on a FIFO
            try:
                print(json.dumps(json.loads(read_fd(fd)), indent=2))
            finally:
                os.close(fd)
        except (OSError, ValueError) as exc:
            say(args, f"{path} cannot be read as JSON: {exc}", always=True)
            return EXIT_FAILED
        return EXIT_OK
    try:
        batch, total = spool.peek(path, max(0, args.events))
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
        rows.append(("quarantined", reason_of(path) or "(no reason recorded)"))
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
    events = sum(event_count(p) for p in files)
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
    for path in files:
        for victim in (path, path.with_name(path.name + ".reason")):
            try:
                victim.unlink()
            except FileNotFoundError:
                pass
    say(args, f"deleted {what}")
    return EXIT_OK
