#!/usr/bin/env python3
"""Offline mode, then a replay: record to a CSV file with no network, upload it later.

Offline mode writes ``epoch,key,value`` rows instead of sending (booleans as true/false so
they come back as booleans). Later, on a machine with a connection, ``isstreamer.replay``
sends the file to a bucket with each reading's own timestamp; the command line equivalent
is ``isstreamer replay --bucket-key KEY readings.csv``. The CSV is never changed: readings
that cannot be delivered at that moment go to the spool and are sent by the next replay.

    python offline_then_replay.py                  # a temporary CSV, 10 readings
    python offline_then_replay.py --csv ~/readings.csv --count 100

The replay needs a configured receiver: ISSTREAMER_ACCESS_KEY (and ISSTREAMER_API_BASE)
or isstreamer.ini.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from isstreamer import Streamer, replay


def record_offline(csv_path: Path, count: int) -> None:
    """Stage 1: no network needed. The ini file switches offline mode on and names the file."""
    ini = csv_path.with_suffix(".ini")
    ini.write_text(f"[isstreamer.client_config]\noffline_mode = true\noffline_file = {csv_path}\n")
    start = time.time() - count  # pretend the readings were taken one per second until now
    with Streamer(bucket_key="offline", ini_file_location=str(ini), offline=True) as streamer:
        for i in range(count):
            streamer.log("temperature_c", round(20 + random.random() * 2, 2), epoch=start + i)
            streamer.log("pump_running", i % 3 == 0, epoch=start + i)
            streamer.log("mode", "auto", epoch=start + i)
    ini.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10, help="readings to record")
    parser.add_argument("--csv", type=Path, help="keep the CSV here (default: a temporary file)")
    parser.add_argument(
        "--bucket-key", default=os.environ.get("ISSTREAMER_BUCKET_KEY", "offline-replay-example")
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        csv_path = (args.csv or Path(tmp) / "readings.csv").expanduser().resolve()
        record_offline(csv_path, args.count)
        print(f"recorded {args.count} readings offline in {csv_path}")

        # Stage 2: upload. Progress arrives as (events done, events in all, events per second).
        result = replay(
            csv_path,
            bucket_key=args.bucket_key,
            bucket_name="Offline then replay example",
            progress=lambda done, total, rate: None,
        )
    print(
        f"replayed to bucket {args.bucket_key}: {result.sent} sent, {result.failed} failed, "
        f"{result.remaining} waiting in the spool"
    )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
