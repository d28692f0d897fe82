#!/usr/bin/env python3
"""Backfill a CSV of past readings, each with its own timestamp.

The CSV has a time column (ISO 8601 or seconds since 1970) and one column per key, e.g.

    time,temperature_c,humidity_pct,window
    2026-01-05T08:00:00+00:00,19.5,48,closed

Every row is logged with ``epoch=`` its own time, so the chart shows when the readings were
taken, not when they were uploaded. Numbers are sent as numbers, the rest as strings. The
service replaces timestamps more than 10 years old with the upload time.

    python read_csv.py                             # a small built-in sample
    python read_csv.py logger.csv --time-column timestamp
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from isstreamer import Streamer


def sample_csv() -> str:
    """Six hours of half-hourly readings ending now, as a logger would have written them."""
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    rows = ["time,temperature_c,humidity_pct,window"]
    for i in range(12, 0, -1):
        when = now - timedelta(minutes=30 * i)
        rows.append(
            f"{when.isoformat()},{18 + (12 - i) * 0.4:.1f},{55 - i},"
            f"{'open' if i % 4 == 0 else 'closed'}"
        )
    return "\n".join(rows) + "\n"


def parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse_cell(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def backfill(streamer: Streamer, rows: Iterable[dict], time_column: str, limit: int) -> int:
    count = 0
    for row in rows:
        if limit and count >= limit:
            break
        epoch = parse_time(row.pop(time_column))
        for key, text in row.items():
            if text not in ("", None):
                streamer.log(key, parse_cell(text.strip()), epoch=epoch)
        count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", nargs="?", help="the CSV file (default: a built-in sample)")
    parser.add_argument("--time-column", default="time")
    parser.add_argument("--count", type=int, default=0, help="rows to send at most (default: all)")
    parser.add_argument(
        "--bucket-key", default=os.environ.get("ISSTREAMER_BUCKET_KEY", "read-csv-example")
    )
    args = parser.parse_args()

    # A large buffer_size: a backfill is bulk data, fewer and larger requests are kinder.
    with Streamer(
        bucket_name="CSV backfill example", bucket_key=args.bucket_key, buffer_size=200
    ) as streamer:
        if args.csv:
            with open(args.csv, newline="", encoding="utf-8") as fh:
                rows = backfill(streamer, csv.DictReader(fh), args.time_column, args.count)
        else:
            rows = backfill(
                streamer, csv.DictReader(io.StringIO(sample_csv())), args.time_column, args.count
            )
        delivered = streamer.flush(timeout=30.0)
        stats = streamer.stats()
    print(
        f"backfilled {rows} rows to bucket {args.bucket_key}: {stats['sent']} events delivered"
        + ("" if delivered else " (the rest is queued or on disk for later)")
    )
    return 0 if not stats["dropped"] else 1


if __name__ == "__main__":
    sys.exit(main())
